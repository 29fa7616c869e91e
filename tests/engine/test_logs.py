"""Structured logs: one JSON object per line, carrying the workflow key and the
execution id a record was given."""

from __future__ import annotations

import json
import logging

from engine.logs import JsonFormatter, TextFormatter


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("rayhook.test", logging.WARNING, __file__, 1, "hello %s", ("x",), None)
    for name, value in extra.items():
        setattr(rec, name, value)
    return rec


def test_json_lines_carry_key_and_execution() -> None:
    line = JsonFormatter().format(record(key="paid", execution="01a2"))
    entry = json.loads(line)
    assert entry["message"] == "hello x" and entry["level"] == "warning"
    assert entry["key"] == "paid" and entry["execution"] == "01a2"
    assert entry["ts"].endswith("Z") and "\n" not in line


def test_json_lines_omit_fields_a_record_does_not_have() -> None:
    entry = json.loads(JsonFormatter().format(record()))
    assert "key" not in entry and "execution" not in entry


def test_text_lines_show_the_same_fields() -> None:
    line = TextFormatter("%(message)s").format(record(key="paid"))
    assert line == "hello x [key=paid]"
