"""Example jobs that the README's first command runs.

``python -m examples.enqueue`` pushes a few of them; watch them run in the worker's log.
"""

from __future__ import annotations

import asyncio
import logging

import pyq

log = logging.getLogger("examples")


@pyq.job(queue="default")
def send_welcome_email(user_id: int, email: str) -> None:
    """A plain function job."""
    log.info("welcome email to user %s <%s>", user_id, email)


@pyq.job(queue="critical", retry=3)
async def charge_card(order_id: int, cents: int) -> None:
    """An ``async def`` job runs on the worker's event loop."""
    await asyncio.sleep(0.01)
    log.info("charged order %s: %s cents", order_id, cents)


class BuildReport(pyq.Job, name="Reports::BuildReport"):
    """A class job with an explicit Sidekiq class name, so Ruby can push it too."""

    queue = "low"

    def perform(self, report_id: int) -> None:
        log.info("report %s built (jid %s)", report_id, self.jid)


@pyq.job(queue="default", retry=2)
def flaky(attempt_marker: str) -> None:
    """Always fails: shows the retry set (``pyq retry list``)."""
    raise RuntimeError(f"flaky job failed ({attempt_marker})")
