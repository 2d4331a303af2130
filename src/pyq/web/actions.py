"""What the dashboard's buttons do: one function per ``POST /action/NAME``, each returning the message shown.

Set and queue actions take the rows to act on from the form: ``one`` (the row's
own button), else every ticked ``key`` (a bulk button), else ``all=1`` (the
whole set or, for processes, every process); the legacy ``jid`` field names one
set entry by jid. A ValueError or LookupError becomes a 400.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..api import Entry
from ..api.queues import parse_queue_key
from ..cancel import cancel
from ..client import Client
from ..cron import CronPoller, CronStore
from .context import Ctx
from .pages.sets import SETS


class Form:
    """A POSTed form: every field may repeat (the ticked checkboxes)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, [default])[0]

    def getall(self, name: str) -> list[str]:
        return self.fields.get(name, [])


Action = Callable[[Ctx, Form], str]


# --- sorted sets ----------------------------------------------------------------------------------------------
def _set_name(form: Form, action: str) -> str:
    name = form.get("set")
    if name not in SETS or action not in dict(SETS[name][3]):
        raise ValueError(f"action {action!r} is not offered for set {name!r}")
    return name


def _chosen(ctx: Ctx, name: str, form: Form) -> Iterator[Entry | str]:
    """The entries a set action applies to (jids for the legacy ``jid`` field)."""
    if form.get("one") or form.getall("key"):
        for key in [form.get("one")] if form.get("one") else form.getall("key"):
            entry = ctx.api.set_entry(name, key)
            if entry is not None:
                yield entry
    elif form.get("jid"):
        yield form.get("jid")
    elif form.get("all") == "1":
        yield from list(ctx.api.set_scan(name))
    else:
        raise ValueError("nothing selected")


def _set_action(action: str, apply: Callable[[Ctx, str, Entry | str], bool]) -> Action:
    def run(ctx: Ctx, form: Form) -> str:
        name = _set_name(form, action)
        if action == "delete" and form.get("all") == "1":
            return f"delete: {ctx.api.set_clear(name)} of {name} done"
        chosen = list(_chosen(ctx, name, form))
        done = sum(apply(ctx, name, e) for e in chosen)
        if form.get("jid") and not form.get("one"):
            return f"{action} {form.get('jid')}: " + ("done" if done else "already gone")
        return f"{action}: {done} of {len(chosen)} done" + ("" if done == len(chosen) else " (others already gone)")

    return run


def _kill(ctx: Ctx, name: str, entry: Entry | str) -> bool:
    return ctx.api.set_kill(entry, dead=ctx.settings.dead, source="schedule" if name == "schedule" else "retry")


# --- queues ---------------------------------------------------------------------------------------------------
def queue_delete(ctx: Ctx, form: Form) -> str:
    queue = form.get("queue")
    keys = [form.get("one")] if form.get("one") else form.getall("key")
    if not queue or not keys:
        raise ValueError("give a queue and the jobs to delete")
    done = 0
    for place, jid in [parse_queue_key(key) for key in keys]:
        done += ctx.api.queue_delete(queue, place, jid)
    return f"queue_delete: {done} of {len(keys)} done"


def queue_clear(ctx: Ctx, form: Form) -> str:
    queue = form.get("queue")
    if not queue:
        raise ValueError("give a queue")
    return f"cleared {queue}: {ctx.api.queue_clear(queue)} jobs deleted"


# --- processes, busy jobs -------------------------------------------------------------------------------------
def _signal(action: str) -> Action:
    def run(ctx: Ctx, form: Form) -> str:
        if form.get("all") == "1":
            procs = [p.identity for p in ctx.api.processes()]
            for identity in procs:
                ctx.api.process_signal(identity, action)
            return f"sent {action} to all {len(procs)} processes"
        signal = ctx.api.process_signal(form.get("identity"), action)
        return f"sent {signal} to {form.get('identity')}"

    return run


def cancel_job(ctx: Ctx, form: Form) -> str:
    client = Client(namespace=ctx.keys.namespace, cluster=ctx.keys.cluster, connection=ctx.redis)
    return f"cancel {form.get('jid')}: was {cancel(form.get('jid'), client)}"


# --- cron -----------------------------------------------------------------------------------------------------
def _cron(action: str) -> Action:
    def run(ctx: Ctx, form: Form) -> str:
        name, namespace = form.get("name"), form.get("namespace") or None
        store = CronStore(ctx.redis, ctx.keys, version=ctx.settings.cron_version)
        if store.get(name, namespace=namespace) is None:
            raise LookupError(f"no cron job named {name!r}")
        if action == "run":
            client = Client.for_config(ctx.settings.config, connection=ctx.redis)
            poller = CronPoller(ctx.redis, ctx.keys, client, version=ctx.settings.cron_version)
            return f"run {name}: jid {poller.enqueue_now(name, namespace=namespace)}"
        getattr(store, action)(name, namespace=namespace)
        return f"{action} {name}: done"

    return run


ACTIONS: dict[str, Action] = {
    "retry": _set_action("retry", lambda ctx, name, e: ctx.api.set_retry(name, e)),
    "add_to_queue": _set_action("add_to_queue", lambda ctx, name, e: ctx.api.set_add_to_queue(name, e)),
    "delete": _set_action("delete", lambda ctx, name, e: ctx.api.set_delete(name, e)),
    "kill": _set_action("kill", _kill),
    "queue_delete": queue_delete,
    "queue_clear": queue_clear,
    "quiet": _signal("quiet"),
    "stop": _signal("stop"),
    "cancel": cancel_job,
    "cron_enable": _cron("enable"),
    "cron_disable": _cron("disable"),
    "cron_run": _cron("run"),
}
