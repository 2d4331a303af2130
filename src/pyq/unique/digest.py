"""The sidekiq-unique-jobs v8 digest: Ruby-compact JSON of sorted pairs, hashed (MD5 or SHA3-256)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .options import PREFIX


def digest(job: dict[str, Any], *, algorithm: str = "legacy") -> str:
    """The gem's lock digest: prefix + MD5 ("legacy") or SHA3-256 ("modern") of Ruby JSON of the sorted
    pairs of class, queue, lock_args (``args`` when absent) and apartment."""
    fields = {"class": job.get("class"), "queue": job.get("queue"), "lock_args": job.get("lock_args", job.get("args"))}
    if "apartment" in job:
        fields["apartment"] = job["apartment"]
    if job.get("unique_across_queues"):
        del fields["queue"]
    if job.get("unique_across_workers"):
        del fields["class"]
    text = ruby_json([[k, fields[k]] for k in sorted(fields)]).encode()
    if algorithm == "legacy":
        hexdigest = hashlib.md5(text, usedforsecurity=False).hexdigest()
    elif algorithm == "modern":
        hexdigest = hashlib.sha3_256(text).hexdigest()
    else:
        raise ValueError(f"unknown digest algorithm {algorithm!r}; expected 'legacy' or 'modern'")
    return f"{job.get('lock_prefix') or PREFIX}:{hexdigest}"


def ruby_json(value: Any) -> str:
    """Ruby's ``JSON.generate`` bytes, floats included (``1.0e+16``, ``1.0e-05``), for digests."""
    if isinstance(value, float):
        return ruby_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(ruby_json, value)) + "]"
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"lock_args: hash key {key!r} is not a string")
        return "{" + ",".join(f"{ruby_json(k)}:{ruby_json(v)}" for k, v in value.items()) + "}"
    if value is None or isinstance(value, (str, int)):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"lock_args: {type(value).__name__} is not JSON-native")


def ruby_float(x: float) -> str:
    """Ruby's ``Float#to_s``: shortest digits; fixed notation for 1e-4 <= |x| < 1e15, else d.de+XX."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"lock_args: {x!r} cannot be encoded as JSON")
    sign, text = ("-", repr(x)[1:]) if repr(x).startswith("-") else ("", repr(x))
    mantissa, _, exp = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits, point = (whole + frac).lstrip("0"), len(whole) + int(exp or 0)
    point -= len(whole + frac) - len((whole + frac).lstrip("0"))
    digits = digits.rstrip("0")
    if not digits:
        return sign + "0.0"
    if -4 < point <= 15:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}e{point - 1:+03d}"
