"""What integration nodes use to reach the outside world (HTTP, SQL, SMTP, a JS
sandbox): shared per process, created lazily inside the running event loop, and
owned by whoever runs executions (an ExecutionActor, or a test). Pure nodes
never touch it."""

from __future__ import annotations

from engine.settings import Settings


class Effects:
    """Attributes: `settings` (allow-lists, data sources, limits). Clients are
    added here as lazily created attributes and closed by `aclose`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def aclose(self) -> None:
        """Close every client opened so far."""
