"""HTML of the dashboard page: plain server-rendered markup, every value escaped, no scripts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape
from typing import Any

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}
header{background:#8b1a1a;color:#fff;padding:10px 20px;display:flex;gap:24px;align-items:baseline}
header h1{font-size:20px;margin:0}
main{padding:12px 20px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:90px}
.card b{display:block;font-size:22px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:14px 0;padding:6px 14px}
h2{font-size:16px;margin:6px 0}
table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:3px 8px;border-bottom:1px solid #eee;font-size:13px}
form{display:inline}
button{font-size:12px;padding:1px 8px;cursor:pointer}
.msg{background:#fff6d6;border:1px solid #e5c100;padding:6px 10px;border-radius:6px}
.empty{color:#888}
pre{font-size:12px;margin:4px 0;white-space:pre-wrap}
"""


def when(epoch_s: float | None) -> str:
    if not epoch_s:
        return "-"
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def page(title: str, body: str) -> bytes:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><header><h1>pyq</h1><span>{escape(title)}</span></header>"
            f"<main>{body}</main></body></html>").encode()


def cards(pairs: Sequence[tuple[str, Any]]) -> str:
    inner = "".join(f"<div class='card' id='card-{escape(k)}'><b>{escape(str(v))}</b>{escape(k)}</div>"
                    for k, v in pairs)
    return f"<div class='cards'>{inner}</div>"


def section(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], anchor: str) -> str:
    """A titled table; ``rows`` hold HTML already escaped by the caller (see :func:`cell`)."""
    if not rows:
        inner = "<p class='empty'>none</p>"
    else:
        head = "".join(f"<th>{escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        inner = f"<table><tr>{head}</tr>{body}</table>"
    return f"<section id='{escape(anchor)}'><h2>{escape(title)}</h2>{inner}</section>"


def cell(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:.2f}"
    return escape(str(value))


def backtrace(lines: Sequence[str] | None) -> str:
    """A job's ``error_backtrace``, folded under its error message (nothing when it has none)."""
    if not lines:
        return ""
    return f"<details class='backtrace'><summary>backtrace</summary><pre>{escape(chr(10).join(lines))}</pre></details>"


def button(action: str, label: str, token: str, **fields: str) -> str:
    """A POST form with the CSRF token; ``fields`` become hidden inputs."""
    hidden = "".join(f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>" for k, v in fields.items())
    return (f"<form method='post' action='/action/{escape(action)}'><input type='hidden' name='csrf' "
            f"value='{escape(token)}'>{hidden}<button type='submit'>{escape(label)}</button></form>")
