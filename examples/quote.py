"""A job whose caller waits for its answer: a shipping quote computed by a worker, returned to the web request.

    handle = shipping_quote.perform_async("SE", 2.5)
    handle.result(timeout=5)     # {"country": "SE", "cents": 1450}, moments after the worker returns it
    handle.status()              # "done"
"""

from __future__ import annotations

import pyq

#: Price per started kilogram, in cents, by destination; anything else is refused.
CENTS_PER_KG = {"SE": 500, "DE": 650, "US": 1200}


@pyq.job(queue="default", result_ttl=600, retry=False)
def shipping_quote(country: str, weight_kg: float) -> dict[str, object]:
    """The return value is stored for 10 minutes; an unknown country ends the job as JobFailed."""
    if country not in CENTS_PER_KG:
        raise ValueError(f"no shipping to {country}")
    started_kg = int(-(-weight_kg // 1))
    return {"country": country, "cents": 450 + CENTS_PER_KG[country] * (started_kg - 1)}
