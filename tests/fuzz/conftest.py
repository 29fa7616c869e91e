"""Fuzzing budget and fixtures.

`.venv/bin/pytest` runs each fuzzer with a modest number of examples (the whole
folder in about two minutes). `RAYHOOK_FUZZ_EXAMPLES=N` selects the campaign
profile: the cheap pure-function fuzzers run N examples each and the ones that
go through the app or a server run a share of N scaled by their cost.

The real-server fixtures are the end-to-end ones (`make_server`, `server`)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.e2e.conftest import make_server, server, session_server

__all__ = ["examples", "make_server", "server", "session_server"]

CAMPAIGN = int(os.environ.get("RAYHOOK_FUZZ_EXAMPLES") or 0)

settings.register_profile(
    "rayhook-ci",
    deadline=None,  # timing is asserted where it matters, not per example
    database=None,  # no .hypothesis/ left in the work tree
    print_blob=True,  # a failure prints the @reproduce_failure line
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("rayhook-campaign", parent=settings.get_profile("rayhook-ci"))
settings.load_profile("rayhook-campaign" if CAMPAIGN else "rayhook-ci")


def examples(ci: int, *, cost: int = 1) -> int:
    """Examples for one fuzzer: `ci` normally; in a campaign N / cost (never fewer
    than `ci`), where `cost` is how many cheap examples one of these is worth."""
    return max(ci, CAMPAIGN // cost) if CAMPAIGN else ci
