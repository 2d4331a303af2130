"""A welcome email, sent once per user however often sign-up code enqueues it.

``lock="until_executed"`` with ``lock_args`` on the user id: while one welcome email for a user is queued,
scheduled, running or waiting for a retry, pushing another for the same user is dropped (the push returns
``""``). The lock goes away after a successful run, so a later, deliberate resend works.

Sending is delegated to a mailer object so tests and local runs need no SMTP server: the default one
appends the message to the Redis list ``examples:outbox``.

    send_welcome_email.perform_async(42, "ada@example.com", "Ada")
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

import pyq
from pyq.client import default_client

log = logging.getLogger("examples.welcome_email")

#: The Redis list the outbox mailer appends to (an application key, not one of pyq's).
OUTBOX_KEY = "examples:outbox"


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


class RedisOutbox:
    """Stores each message in Redis instead of sending it; swap in an SMTP mailer in production."""

    def send(self, to: str, subject: str, body: str) -> None:
        default_client().redis.rpush(OUTBOX_KEY, json.dumps({"to": to, "subject": subject, "body": body}))


mailer: Mailer = RedisOutbox()


def render(name: str) -> tuple[str, str]:
    """Subject and body of the welcome message."""
    return f"Welcome, {name}!", f"Hello {name},\n\nthanks for signing up. Reply to this email with any question."


@pyq.job(queue="default", retry=5, lock="until_executed", lock_ttl=24 * 3600,
         lock_args=lambda args: [args[0]], on_conflict="log")
def send_welcome_email(user_id: int, email: str, name: str) -> None:
    """Render and send; an invalid address raises, so the job shows up in the retry set for someone to fix."""
    if "@" not in email:
        raise ValueError(f"user {user_id}: not an email address: {email!r}")
    subject, body = render(name)
    mailer.send(email, subject, body)
    log.info("welcome email sent to user %s", user_id)


def outbox() -> list[dict[str, Any]]:
    """Messages the outbox mailer stored, oldest first."""
    return [json.loads(raw) for raw in default_client().redis.lrange(OUTBOX_KEY, 0, -1)]
