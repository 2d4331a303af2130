"""HTML building blocks of the dashboard: layout, tables, forms, pager; every value escaped here.

Callers pass plain values to :func:`cell` (or any helper taking text) and get
escaped HTML back; only strings already built by these helpers are joined
unescaped. Attributes are always single-quoted and ``html.escape`` escapes
quotes, so a value cannot leave its attribute.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from .style import STYLE

#: Choices of the auto-refresh selector, in seconds (0 = off, the default).
REFRESH_CHOICES_S = (0, 2, 5, 10, 30, 60)
#: The select-all checkbox of a bulk form: ticks the rows of its own form.
SELECT_ALL = "for(const c of this.form.querySelectorAll('input[name=key]'))c.checked=this.checked"


def when(epoch_s: float | None) -> str:
    if not epoch_s:
        return "-"
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def cell(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:.2f}"
    return escape(str(value))


def link(href: str, label: Any, **attrs: str) -> str:
    extra = "".join(f" {escape(k)}='{escape(v)}'" for k, v in attrs.items())
    return f"<a href='{escape(href)}'{extra}>{cell(label)}</a>"


def href(root: str, path: str, **query: Any) -> str:
    """``root`` (the mount point) + ``path`` + the non-empty query parameters."""
    params = {k: v for k, v in query.items() if v not in (None, "", 0)}
    return root + path + ("?" + urlencode(params) if params else "")


def queue_path(name: str) -> str:
    return "/queues/" + quote(name, safe="")


def layout(title: str, body: str, *, root: str, nav: Sequence[tuple[str, str]], current: str,
           message: str = "", refresh_s: int = 0, keep: dict[str, str] | None = None) -> bytes:
    """The whole document: head (with the meta refresh when chosen), nav bar, message, body.

    ``keep`` are the page's query parameters, carried by the refresh selector's form."""
    meta = f"<meta http-equiv='refresh' content='{refresh_s}'>" if refresh_s else ""
    links = "".join(link(href(root, path, refresh=refresh_s), label, **({"class": "on"} if path == current else {}))
                    for path, label in nav)
    choices = "".join(f"<option value='{s}'{' selected' if s == refresh_s else ''}>{f'{s} s' if s else 'off'}</option>"
                      for s in REFRESH_CHOICES_S)
    carried = "".join(f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>"
                      for k, v in (keep or {}).items() if k != "refresh")
    refresh = (f"<form method='get' id='refresh'>{carried}<label>refresh <select name='refresh' "
               f"onchange='this.form.submit()'>{choices}</select></label><noscript><button>set</button></noscript>"
               f"</form>")
    note = f"<p class='msg' id='msg'>{escape(message)}</p>" if message else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'>{meta}<title>{escape(title)} - pyq</title>"
            f"<style>{STYLE}</style></head><body><header><h1>pyq</h1><nav>{links}</nav>{refresh}</header>"
            f"<main><h2 id='title'>{escape(title)}</h2>{note}{body}</main></body></html>").encode()


def cards(pairs: Sequence[tuple[str, Any]]) -> str:
    inner = "".join(f"<div class='card' id='card-{escape(k)}'><b>{cell(v)}</b>{escape(k)}</div>" for k, v in pairs)
    return f"<div class='cards'>{inner}</div>"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], anchor: str = "") -> str:
    """A table; ``rows`` hold HTML built by these helpers (escape plain values with :func:`cell`)."""
    if not rows:
        return f"<p class='empty' id='{escape(anchor)}-empty'>none</p>" if anchor else "<p class='empty'>none</p>"
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    ident = f" id='{escape(anchor)}'" if anchor else ""
    return f"<table{ident}><tr>{head}</tr>{body}</table>"


def section(title: str, inner: str, anchor: str) -> str:
    return f"<section id='{escape(anchor)}'><h3>{escape(title)}</h3>{inner}</section>"


def hidden(token: str, **fields: Any) -> str:
    pairs = {"csrf": token, **fields}
    return "".join(f"<input type='hidden' name='{escape(k)}' value='{cell(v)}'>" for k, v in pairs.items())


def button(root: str, action: str, label: str, token: str, **fields: Any) -> str:
    """A one-button POST form with the CSRF token; ``fields`` become hidden inputs."""
    return (f"<form method='post' action='{escape(root)}/action/{escape(action)}'>{hidden(token, **fields)}"
            f"<button type='submit' data-action='{escape(action)}'>{escape(label)}</button></form>")


def row_button(root: str, action: str, label: str, key: str) -> str:
    """A button of one row inside a bulk form: it posts ``one=KEY`` (the ticked boxes are ignored)."""
    return (f"<button type='submit' name='one' value='{escape(key)}' "
            f"formaction='{escape(root)}/action/{escape(action)}' data-action='{escape(action)}'>"
            f"{escape(label)}</button>")


def checkbox(key: str) -> str:
    return f"<input type='checkbox' name='key' value='{escape(key)}'>"


def select_all() -> str:
    return f"<input type='checkbox' class='all' title='select all' onclick=\"{escape(SELECT_ALL)}\">"


def bulk_form(root: str, token: str, inner: str, buttons: Sequence[tuple[str, str]], anchor: str,
              **fields: Any) -> str:
    """A form around a table of checkboxes; each of ``buttons`` (action, label) posts the ticked rows."""
    bar = "".join(f"<button type='submit' formaction='{escape(root)}/action/{escape(a)}' data-action='{escape(a)}'"
                  f" data-bulk='selected'>{escape(label)} selected</button>" for a, label in buttons)
    return (f"<form method='post' class='bulk' id='{escape(anchor)}-form' action='{escape(root)}/action/none'>"
            f"{hidden(token, **fields)}<div class='bar'>{bar}</div>{inner}</form>")


def all_buttons(root: str, token: str, buttons: Sequence[tuple[str, str]], **fields: Any) -> str:
    """One form per action applied to every entry (``all=1``)."""
    return "<div class='bar all'>" + "".join(
        f"<form method='post' action='{escape(root)}/action/{escape(a)}'>{hidden(token, all=1, **fields)}"
        f"<button type='submit' data-action='{escape(a)}' data-bulk='all'>{escape(label)} all</button></form>"
        for a, label in buttons) + "</div>"


def filter_form(needle: str, hint: str = "class, jid, error, args", **keep: Any) -> str:
    """The GET form of a list's substring filter (``q``); ``hint`` says what it matches, ``keep`` are
    carried as hidden fields."""
    carried = "".join(f"<input type='hidden' name='{escape(k)}' value='{cell(v)}'>" for k, v in keep.items() if v)
    return (f"<form method='get' class='filter' id='filter'>{carried}<input type='search' name='q' "
            f"value='{cell(needle)}' placeholder='filter: {escape(hint)}'>"
            "<button type='submit'>Filter</button></form>")


def pager(root: str, path: str, page: int, pages: int, **query: Any) -> str:
    """First / previous / page X of Y / next / last links (1-based pages)."""
    if pages <= 1:
        return f"<p class='pager' id='pager'>page 1 of {max(pages, 1)}</p>"

    def to(n: int, label: str) -> str:
        return link(href(root, path, page=n, **query), label, rel=label) if 1 <= n <= pages and n != page \
            else f"<span>{escape(label)}</span>"

    return (f"<p class='pager' id='pager'>{to(1, 'first')} {to(page - 1, 'prev')} "
            f"<span id='page-of'>page {page} of {pages}</span> {to(page + 1, 'next')} {to(pages, 'last')}</p>")


def pretty(value: Any) -> str:
    """JSON, indented, escaped, in a ``<pre>``."""
    return f"<pre>{escape(json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False))}</pre>"


def backtrace(lines: Sequence[str] | None) -> str:
    """A job's decoded ``error_backtrace`` (nothing when it has none)."""
    if not lines:
        return ""
    return f"<pre class='backtrace' id='backtrace'>{escape(chr(10).join(lines))}</pre>"
