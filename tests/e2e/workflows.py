"""Definitions the end-to-end tests share."""

from __future__ import annotations

from typing import Any


def seed_example(**extra: Any) -> dict[str, Any]:
    """The seed page's example: a condition on the body, a 200 or a 400 Response."""
    return {
        "title": "Paid?",
        "type": "webhook",
        "sync": True,
        "enabled": True,
        "nodes": [
            {
                "key": "check",
                "type": "condition",
                "title": "Paid?",
                "config": {
                    "engine": "basic",
                    "rejectOnFalse": False,
                    "calculation": {
                        "group": {
                            "type": "and",
                            "calculations": [
                                {
                                    "calculator": "equal",
                                    "operands": ["{{$context.body.status}}", "paid"],
                                }
                            ],
                        }
                    },
                },
                "branches": {
                    "1": [
                        {
                            "key": "ok",
                            "type": "response",
                            "config": {
                                "statusCode": 200,
                                "headers": [
                                    {"name": "X-Order", "value": "{{$context.body.order}}"}
                                ],
                                "body": {"ok": True, "order": "{{$context.body.order}}"},
                            },
                        }
                    ],
                    "0": [
                        {
                            "key": "bad",
                            "type": "response",
                            "config": {"statusCode": 400, "body": {"ok": False}},
                        }
                    ],
                },
            }
        ],
        **extra,
    }


def async_echo(**extra: Any) -> dict[str, Any]:
    """An async workflow: three nodes, an output of what it read."""
    return {
        "title": "async echo",
        "sync": False,
        "enabled": True,
        "nodes": [
            {"key": "amount", "type": "variable", "config": {"value": "{{$context.body.amount}}"}},
            {
                "key": "big",
                "type": "condition",
                "config": {
                    "rejectOnFalse": False,
                    "calculation": {
                        "calculator": "gt",
                        "operands": ["{{$jobsMapByNodeKey.amount}}", 100],
                    },
                },
            },
            {
                "key": "out",
                "type": "output",
                "config": {
                    "value": {
                        "amount": "{{$jobsMapByNodeKey.amount}}",
                        "big": "{{$jobsMapByNodeKey.big}}",
                    }
                },
            },
        ],
        **extra,
    }
