"""pyq: Redis-backed background jobs for Python that speak Sidekiq's wire format."""

from __future__ import annotations

from ._version import __version__
from .client import Client, configure
from .errors import ConfigError, InvalidPayload, PyqError, UnknownJob
from .job import Job, job
from .middleware import add_client_middleware, add_server_middleware, on_death

__all__ = ["Client", "ConfigError", "InvalidPayload", "Job", "PyqError", "UnknownJob", "__version__",
           "add_client_middleware", "add_server_middleware", "configure", "job", "on_death"]
