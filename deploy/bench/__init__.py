"""`rayhook bench` (SPEC §8): a webhook load generator that is not the bottleneck.

Two engines produce the same `Result`: `wrk` (C, closed loop, when installed)
and an asyncio HTTP/1.1 client with keep-alive connections (closed loop, and
open loop at a fixed `--rate`, measuring latency from each request's scheduled
start so a stalled server cannot hide its queueing)."""
