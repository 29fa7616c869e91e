"""Scenarios 2, 3 and 6 on the main stack: the async payment workflow (closed
loop, the accept path alone, a sustained open loop), the sync round trip, and
the async workflow unsigned and Stripe-signed side by side."""

from __future__ import annotations

from benchmarks.report import Row, describe
from benchmarks.stack import ASYNC_WORKFLOW, STRIPE_SECRET, Bench, Stack, with_loss_check
from deploy.bench.signing import Signer


def async_payment(stack: Stack, bench: Bench, baseline: float | None, rate: float) -> list[Row]:
    """Closed loop with the loss check, then the accept path alone (a stack of
    its own: `ingress_alone`), then an open loop at `rate` events/s (the
    workflow `bench-async` is applied)."""
    url = stack.url("bench-async")
    rows: list[Row] = []
    result = with_loss_check(stack, ["bench-async"], lambda: bench.closed(url))
    rows += describe("2 async 3-node, closed loop", result, baseline)
    rows += ingress_alone(bench, baseline)
    result = with_loss_check(stack, ["bench-async"], lambda: bench.open(url, rate))
    rows += describe(f"2 async 3-node, open loop {rate:.0f}/s", result, baseline, sustained=True)
    return rows


def ingress_alone(bench: Bench, baseline: float | None) -> list[Row]:
    """The accept path alone: the async closed loop with the Ray actors paused,
    on a stack of its own with pacing off. With the actors paused the backlog
    only grows, so on the main stack every reply past RAYHOOK_PACE_BACKLOG
    entries would be held back (ingress/pacing.py) and the figure would measure
    the pacing, not the path."""
    with Stack(env={"RAYHOOK_PACE_BACKLOG": "0"}) as stack:
        stack.apply(ASYNC_WORKFLOW)
        url = stack.url("bench-async")
        result = with_loss_check(
            stack, ["bench-async"], lambda: stack.actors_paused(lambda: bench.closed(url))
        )
    return describe("2 async 3-node, ingress alone (actors paused, pacing off)", result, baseline)


def sync_round_trip(stack: Stack, bench: Bench, baseline: float | None) -> list[Row]:
    """Round trips/s and latency of `bench-sync` (applied), on a quiet stack."""
    stack.wait_history_moved()
    result = bench.closed(stack.url("bench-sync"))
    return describe("3 sync condition → Response", result, baseline)


def signed(stack: Stack, bench: Bench, baseline: float | None) -> list[Row]:
    """The async workflow without and with a Stripe signature check, one after
    the other under the same load; the signed one's ratio is to the unsigned."""
    signature = {"scheme": "stripe", "secret": "{{$env.BENCH_STRIPE_SECRET}}"}
    stack.apply(ASYNC_WORKFLOW, key="bench-signed", config={"signature": signature})
    unsigned = with_loss_check(
        stack, ["bench-async"], lambda: bench.closed(stack.url("bench-async"))
    )
    signer = Signer.parse(f"stripe:{STRIPE_SECRET}")
    result = with_loss_check(
        stack, ["bench-signed"], lambda: bench.closed(stack.url("bench-signed"), signer)
    )
    return [
        *describe("6 signed: async 3-node, unsigned", unsigned, baseline),
        *describe("6 signed: async 3-node, Stripe-signed", result, unsigned.rps, versus="unsigned"),
    ]
