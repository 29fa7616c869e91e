"""The variables every template and expression can read (SPEC §4)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from engine.date_ranges import DATE_RANGES
from engine.snowflake import GENERATOR

ROOTS = ("$context", "$jobsMapByNodeKey", "$scopes", "$system", "$env")

_INSTANCE_ID = f"{socket.gethostname()}-{os.getpid()}"

#: `$system.*`: functions, called when a template reads them (NocoBase's set).
SYSTEM: Mapping[str, Any] = {
    "now": lambda: datetime.now(UTC),
    "dateRange": DATE_RANGES,
    "epoch": lambda: 1605024000,
    "instanceId": lambda: _INSTANCE_ID,
    "genSnowflakeId": GENERATOR.generate,
}


def trigger_scope(context: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """What the async reply may read: no node has run yet."""
    return {"$context": context, "$system": SYSTEM, "$env": env}
