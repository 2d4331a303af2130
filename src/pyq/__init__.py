"""pyq: Redis-backed background jobs for Python that speak Sidekiq's wire format."""

from __future__ import annotations

from . import limiter
from ._version import __version__
from .batch import Batch
from .batch_status import BatchStatus, NoSuchBatch
from .cancel import cancel, cancelled_jobs
from .client import Client, configure
from .client import default_client as _default_client
from .context import JobContext, current
from .errors import ConfigError, InvalidPayload, JobCancelled, JobTimeout, PyqError, UnknownJob
from .iteration import IterableJob
from .job import Job, job
from .job import add_option_check as _add_option_check
from .job import lock_args_method as _lock_args_method
from .job import set_client_source as _set_client_source
from .job_progress import Progress
from .job_progress import read as _read_progress
from .middleware import add_client_middleware, add_server_middleware, on_death
from .results import JobFailed, JobHandle
from .unique.client import set_lock_args_lookup as _set_lock_args_lookup
from .unique.options import check_options as _check_lock_options

# The job model, the client and unique jobs never import one another; they meet here.
_set_client_source(_default_client)  # perform_async & co. without client= push through the default client
_set_lock_args_lookup(_lock_args_method)  # unique jobs take lock_args from the pushed class's definition
_add_option_check(_check_lock_options)  # an unknown lock type fails when the job is defined
_add_option_check(limiter.check_options, policy=True)  # so does a malformed limits / limits_concurrency

def progress(jid: str, client: Client | None = None) -> Progress | None:
    """The progress job ``jid`` last reported (``pyq.current().progress(...)``, or an iterable job's own), or None."""
    c = client or _default_client()
    return _read_progress(c.redis, c.keys, jid)


def result(jid: str, timeout: float | None = None, *, client: Client | None = None) -> object:
    """A job's stored result (jobs pushed with ``result_ttl``), from any process; see :meth:`JobHandle.result`."""
    return JobHandle(jid, client or _default_client()).result(timeout)


__all__ = ["Batch", "BatchStatus", "Client", "ConfigError", "InvalidPayload", "IterableJob", "Job", "JobCancelled",
           "JobContext", "JobFailed", "JobHandle", "JobTimeout", "NoSuchBatch", "Progress", "PyqError", "UnknownJob",
           "__version__", "add_client_middleware", "add_server_middleware", "cancel", "cancelled_jobs", "configure",
           "current", "job", "limiter", "on_death", "progress", "result"]
