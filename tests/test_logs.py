"""Log line formats: Sidekiq's text lines by default, JSON lines with --log-format json."""

from __future__ import annotations

import json
import logging
import re

from pyq.logs import JsonFormatter, SidekiqFormatter


def record(msg: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("pyq.job", level, __file__, 1, msg, None, None)


def test_text_lines_follow_sidekiqs_format():
    line = SidekiqFormatter().format(record("Foo jid=abc elapsed=0.001 done", logging.WARNING))
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(stamp + r" pid=\d+ tid=[0-9a-f]+ WARN: Foo jid=abc elapsed=0.001 done", line), line


def test_json_lines_are_one_object_each_with_level_and_message():
    entry = json.loads(JsonFormatter().format(record("café done")))
    assert entry["lvl"] == "INFO" and entry["msg"] == "café done" and entry["logger"] == "pyq.job"
    assert isinstance(entry["ts"], float) and isinstance(entry["pid"], int)
