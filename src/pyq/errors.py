"""Exceptions pyq raises, in one place so callers can catch them by kind, and the exit status each means."""

from __future__ import annotations

#: Exit statuses of the ``pyq`` command: success, runtime failure, bad usage or config (a ConfigError).
RET_OK, RET_FAILURE, RET_USAGE = 0, 1, 2
#: Exit status of a worker process stopped on request (Web UI Stop, ``pyq processes stop``): its
#: supervisor does not replace it. Any other non-zero status or a signal means it died and is replaced.
RET_STOPPED = 3
#: Exit status of a worker process that replaced itself because a job ignored its time limit past the
#: grace: the job was already stored as failed, so the supervisor re-forks it like any other exit.
RET_STUCK_JOB = 4


class PyqError(Exception):
    """Base class of every pyq error."""


class InvalidPayload(PyqError, ValueError):
    """A job payload that is not a Sidekiq job: bad JSON, not an object, missing fields."""


class UnknownJob(PyqError, LookupError):
    """A wire class name that no registered job and no importable path matches."""


class ConfigError(PyqError):
    """A configuration problem; the message names the file, the key and what was expected."""


class CannotStart(PyqError):
    """A startup problem no retry can heal (bad credentials, an ACL denial, a taken port): one line, exit 2."""


class ArgumentError(PyqError, TypeError):
    """The payload's arguments do not fit the job's signature (stored as Ruby's ArgumentError)."""

    wire_name = "ArgumentError"


class Requeued(PyqError):
    """Raised by a job that wants to run again later from its queue, not as a failure (an iterable job
    interrupted by a stop or by its ``max_iteration_runtime``, Sidekiq's ``Interrupted``).

    The processor puts the job back at the back of its queue, leaving the in-flight list in the same
    step; it is neither acked nor retried, and keeps its jid.
    """


class Rescheduled(Requeued):
    """A :class:`Requeued` that runs again ``delay_s`` from now, from the schedule set: a job over a
    limiter's limit (Sidekiq Enterprise's ``OverLimit``). ``reason`` names the limiter, for the counts.

    The processor moves it from the in-flight list to the schedule set in one step
    (``lua/reschedule.lua``); it is not a failure, uses no retry, and its ``overrated`` count goes up.
    """

    def __init__(self, message: str, *, delay_s: float, reason: str) -> None:
        super().__init__(message)
        self.delay_s, self.reason = delay_s, reason


class Shutdown(BaseException):  # noqa: N818 - a control-flow signal like KeyboardInterrupt
    """Raised inside a job interrupted by shutdown: not a failure, never retried, not acked."""


class JobTimeout(PyqError):
    """Raised inside a job that ran past its time limit; stored as a failure and retried as any other."""

    wire_name = "pyq.JobTimeout"

    def __init__(self, message: str = "the job ran past its time limit") -> None:
        super().__init__(message)


class JobCancelled(PyqError):
    """Raised by ``raise_if_interrupted()`` in a job cancelled with :func:`pyq.cancel`: neither retried nor dead."""

    wire_name = "pyq.JobCancelled"
