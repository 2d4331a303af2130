"""Unique jobs, compatible with sidekiq-unique-jobs v8: same digest, same Redis keys, same lock types.

Ruby and pyq share the gem's layout, so each side honours and releases the other's locks. For a
digest ``D`` (``uniquejobs:<hex>``): ``D`` holds the holder's jid, ``D:LOCKED`` maps jid -> lock time
and is what "locked" means, ``D:QUEUED`` receives a ``"1"`` token on release (for Ruby waiters),
``D:PRIMED``/``D:INFO`` are Ruby's; ``D:RUN...`` is the same family for runtime locks.

Life of a unique job:
1. :func:`prepare` adds ``lock_timeout``, ``lock_ttl``, ``lock_prefix``, ``lock_args``, ``lock_digest``.
2. :func:`push` takes the lock and stores the job in one script (``lua/lock_push.lua``); on a
   conflict the client strategy (``on_conflict``) decides: drop, raise, dead set, replace, reschedule.
3. :func:`server_middleware` releases or takes locks around the run, per lock type.
4. :func:`on_death` deletes every key of the digest; :func:`release_for_recovery` frees the runtime
   lock of a job whose worker was killed.
"""

from .client import delete_locks, prepare, push
from .digest import digest, ruby_float, ruby_json
from .lock import Lock
from .options import LOCK_TYPES, PREFIX, RESCHEDULE_IN_S, STRATEGIES, LockConflict, lock_type, strategy
from .server import on_death, release_for_recovery, server_middleware

__all__ = [
    "LOCK_TYPES", "PREFIX", "RESCHEDULE_IN_S", "STRATEGIES", "Lock", "LockConflict", "delete_locks", "digest",
    "lock_type", "on_death", "prepare", "push", "release_for_recovery", "ruby_float", "ruby_json",
    "server_middleware", "strategy",
]
