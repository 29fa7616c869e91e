"""The effects of the integration nodes: HTTP (`http.py`, through the outbound
policy of `outbound.py`), SQL (`sql.py`), SMTP (`mail.py`) and the JavaScript
sandbox (`scripts.py`, `sandbox/`), implementing the ports of `engine.effects`.
`wiring.py` installs them in a process.

This module imports nothing: a sandbox process (`python -m
integrations.sandbox.worker`) starts with it.
"""
