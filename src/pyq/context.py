"""What server middleware and a job's own callbacks see of the job they wrap.

Its own module so that :mod:`pyq.middleware` (which runs the chains) and :mod:`pyq.processor`
(which builds the context) both depend on it, and neither on the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fetch import UnitOfWork
    from .job import JobDefinition
    from .keys import Keys
    from .scripts import DeadLimits


@dataclass
class JobContext:
    """One running job: its payload, where it came from, its definition and bound arguments."""

    job: dict[str, Any]
    raw: bytes
    queue: str
    definition: JobDefinition
    args: list[Any]
    kwargs: dict[str, Any]
    redis: Any
    keys: Keys
    unit: UnitOfWork = field(repr=False, default=None)  # type: ignore[assignment]
    instance: Any = field(repr=False, default=None)  #: the pyq.Job instance of a class job
    dead: DeadLimits | None = field(repr=False, default=None)  #: the worker's dead-set trim; None = Config's
