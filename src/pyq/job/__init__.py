"""The job model: what a job is, what its push carries and how a worker calls it.

A job has a *wire name*, the ``class`` string of its Sidekiq payload, options and hooks:

- :mod:`.options`: which options travel in the payload (``queue``, ``retry``, ``backtrace``,
  ``tags``, ``retry_queue``, ``dead``, ``retry_for``, the uniqueness ``lock*`` fields) so Ruby
  tools see them, which stay in Python (``retry_on``, ``discard_on``, hooks), their checks at
  definition time, and how a hook is called;
- :mod:`.definition`: :class:`JobDefinition`, the payload a push builds (``item``), the hooks
  and failure policy a worker looks up (``hook``, ``failure_policy``) and the call it makes
  (``call_parts``, ``invoke``);
- :mod:`.registry`: ``@pyq.job``, ``pyq.Job`` and the wire name -> definition registry;
- :mod:`.enqueue`: ``job.set(...)`` and ``perform_*``, which hand the item to a client.

The job model imports neither the client nor unique jobs: ``pyq/__init__.py`` connects them.
"""

from .definition import JobDefinition, call_parts, wire_name
from .enqueue import ConfiguredJob, Pusher, set_client_source
from .options import PAYLOAD_OPTIONS, POLICY_OPTIONS, add_option_check, call_hook, check_policy
from .registry import Job, job, lock_args_method, registered, resolve, unserved_queues

__all__ = [
    "PAYLOAD_OPTIONS", "POLICY_OPTIONS", "ConfiguredJob", "Job", "JobDefinition", "Pusher",
    "add_option_check", "call_hook", "call_parts", "check_policy", "job", "lock_args_method", "registered", "resolve",
    "set_client_source", "unserved_queues", "wire_name",
]
