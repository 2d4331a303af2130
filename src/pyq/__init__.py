"""pyq: Redis-backed background jobs for Python that speak Sidekiq's wire format."""

from __future__ import annotations

from .client import Client, configure
from .errors import ConfigError, InvalidPayload, PyqError, UnknownJob
from .job import Job, job
from .middleware import add_client_middleware, add_server_middleware, on_death

__version__ = "0.1.0"

__all__ = ["Client", "ConfigError", "InvalidPayload", "Job", "PyqError", "UnknownJob", "__version__",
           "add_client_middleware", "add_server_middleware", "configure", "job", "on_death"]
