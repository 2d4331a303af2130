"""Resumable iteration, Sidekiq 7.3 style: :class:`IterableJob`, its state in ``it-JID``, and enumerators.

- :mod:`.job`: :class:`IterableJob`, the loop, its stop checks, saves and hooks;
- :mod:`.state`: the ``it-JID`` hash, read and written as Ruby's ``Sidekiq::IterableJob`` does;
- :mod:`.enumerators`: ``(item, cursor)`` enumerators over a range, a list, a CSV file, keyset pages.
"""

from .enumerators import Enumerator, array_enumerator, csv_enumerator, keyset_enumerator, range_enumerator
from .job import CANCEL_POLL_S, CHECKPOINT_INTERVAL_S, Interrupted, IterableJob
from .state import IterationState, StateStore, cancel

__all__ = ["CANCEL_POLL_S", "CHECKPOINT_INTERVAL_S", "Enumerator", "Interrupted", "IterableJob", "IterationState",
           "StateStore", "array_enumerator", "cancel", "csv_enumerator", "keyset_enumerator", "range_enumerator"]
