"""Charging a card: which failures are retried, how, and which are dropped.

- ``GatewayTimeout`` (the payment provider did not answer): retried up to 5 runs in all, with
  exponential waits (3 s, 6 s, 12 s, ... plus jitter) -- ``retry_on``.
- ``CardDeclined``: retrying cannot help and must not charge twice, so the job is discarded at once:
  no retry, no dead-set entry, no death handlers -- ``discard_on``. The order is marked declined.
- Anything else: Sidekiq's default backoff, at most ``retry=8`` retries, then the dead set.
- When the retries run out, ``retries_exhausted`` marks the order failed so support sees it.

The gateway here is a stand-in that answers by card token the way payment providers' test tokens do:
``tok_declined`` declines, ``tok_timeout`` times out, anything else succeeds. Order states live in the
Redis hash ``examples:orders`` (an application key, not one of pyq's).

    charge.perform_async(1001, 2599, "tok_visa")
"""

from __future__ import annotations

import logging
from typing import Any

import pyq
from pyq.client import default_client

log = logging.getLogger("examples.payments")

ORDERS_KEY = "examples:orders"


class CardDeclined(Exception):
    """The issuer refused the card; a retry would be refused too."""


class GatewayTimeout(Exception):
    """The payment provider did not answer in time; the charge may go through on a retry."""


def gateway_charge(cents: int, card_token: str) -> str:
    """The stand-in gateway: returns a charge id or raises like a real one would."""
    if card_token == "tok_declined":
        raise CardDeclined(f"card declined ({cents} cents)")
    if card_token == "tok_timeout":
        raise GatewayTimeout("no answer from the gateway within 10 s")
    return f"ch_{card_token}_{cents}"


def set_status(order_id: int, status: str) -> None:
    default_client().redis.hset(ORDERS_KEY, str(order_id), status)


def mark_failed(job: dict[str, Any], exc: BaseException) -> None:
    """``retries_exhausted``: the job goes to the dead set; the order is marked for support."""
    set_status(job["args"][0], f"failed: {type(exc).__name__}")


@pyq.job(queue="critical", retry=8,
         retry_on={GatewayTimeout: {"attempts": 5, "wait": "exponential"}},
         discard_on=(CardDeclined,),
         retries_exhausted=mark_failed)
def charge(order_id: int, cents: int, card_token: str) -> None:
    """Charge the order's card once; a declined card marks the order and is not retried."""
    try:
        charge_id = gateway_charge(cents, card_token)
    except CardDeclined:
        set_status(order_id, "declined")
        raise
    set_status(order_id, f"paid {charge_id}")
    log.info("order %s paid (%s)", order_id, charge_id)
