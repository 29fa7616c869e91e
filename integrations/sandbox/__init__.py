"""Where untrusted JavaScript runs: a pool of sandbox processes that can be lost
without losing the executor that asked (`pool.py`, the processes' main loop in
`worker.py`), or inline on threads of the executor's own process (an operator's
choice, `RAYHOOK_SCRIPT_SANDBOX=inline`). Both run one fresh V8 isolate per
script (`v8.py`), speak the structs of `protocol.py`, and share the per-workflow
fair slots (`slots.py`) and the per-execution CPU allowance (`budget.py`)."""
