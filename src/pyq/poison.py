"""Payloads that are not runnable jobs, stored in the dead set so that nothing is lost.

The wrapper is a valid Sidekiq job (Ruby's Web UI can list it) that keeps the original bytes:
``raw_payload`` when they are UTF-8 text, ``raw_payload_base64`` otherwise.
"""

from __future__ import annotations

import base64
from typing import Any

from . import payload
from .error_fields import error_class_name, error_message
from .errors import InvalidPayload

#: Class name given to a payload that is not a job, when it is stored in the dead set.
POISON_CLASS = "pyq.InvalidPayload"


def poison_job(raw: bytes, queue: str, exc: BaseException, stamp: float | int) -> dict[str, Any]:
    """A dead-set entry for bytes that are not a runnable job; the original text rides along."""
    try:
        kept = {"raw_payload": raw.decode("utf-8")}
    except UnicodeDecodeError:
        kept = {"raw_payload_base64": base64.b64encode(raw).decode()}
    return {"class": POISON_CLASS, "args": [], "queue": queue, "jid": payload.new_jid(), "retry": False,
            "created_at": stamp, "failed_at": stamp, "retry_count": 0, "error_class": error_class_name(exc),
            "error_message": error_message(exc), **kept}


def encode_for_storage(raw: bytes, job: dict[str, Any], time_style: payload.TimeStyle) -> str:
    """The JSON to store; a job JSON cannot carry back (NaN read from the queue) is stored as poison."""
    try:
        return payload.dumps(job)
    except ValueError as exc:
        error = InvalidPayload(f"job cannot be written back as JSON: {exc}")
        return payload.dumps(poison_job(raw, str(job.get("queue", "")), error, payload.timestamp(style=time_style)))
