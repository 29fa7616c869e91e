"""Fair shares of the sandbox slots between workflows.

`size` scripts run at once in one executor; one workflow holds at most `share`
of them, so that a workflow flooding the pool (ten looping scripts) always
leaves a slot to the others. Waiting workflows are served in turn (round
robin), each in its own arrival order, so a long queue of one workflow does not
delay another's single script."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque


class FairSlots:
    """Attributes: `size`, `share` (slots one owner may hold at once).

    Example::

        slots = FairSlots(size=4, share=3)
        await slots.acquire("payments")
        try:
            ...
        finally:
            slots.release("payments")
    """

    def __init__(self, size: int, share: int) -> None:
        self.size = max(1, size)
        self.share = max(1, min(share, self.size))
        self._held: dict[str, int] = {}
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @property
    def busy(self) -> int:
        return sum(self._held.values())

    def held(self, owner: str) -> int:
        return self._held.get(owner, 0)

    async def acquire(self, owner: str) -> None:
        if not self._waiting and self._can_take(owner):
            self._take(owner)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(owner, deque()).append(future)
        self._grant()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(owner)  # granted just as it was canceled
            else:
                self._drop(owner, future)
            raise

    def release(self, owner: str) -> None:
        held = self._held.get(owner, 0) - 1
        if held > 0:
            self._held[owner] = held
        else:
            self._held.pop(owner, None)
        self._grant()

    def _can_take(self, owner: str) -> bool:
        return self.busy < self.size and self.held(owner) < self.share

    def _take(self, owner: str) -> None:
        self._held[owner] = self.held(owner) + 1

    def _grant(self) -> None:
        """Hand free slots to waiting owners in turn; an owner served goes to
        the back of the line."""
        progress = True
        while progress and self.busy < self.size and self._waiting:
            progress = False
            for owner in list(self._waiting):
                if self.busy >= self.size:
                    return
                if self.held(owner) >= self.share:
                    continue
                queue = self._waiting[owner]
                future = queue.popleft()
                if not queue:
                    del self._waiting[owner]
                else:
                    self._waiting.move_to_end(owner)
                self._take(owner)
                future.set_result(None)
                progress = True
                break

    def _drop(self, owner: str, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(owner)
        if queue is None:
            return
        try:
            queue.remove(future)
        except ValueError:
            pass
        if not queue:
            del self._waiting[owner]
