"""`SyncServer`: an execution actor's side of the sync webhook calls
(`store/sync_calls.py`): each call runs its execution, and the reply
(`engine/sync_replies.py`) goes back to its caller as soon as the execution ends."""

from __future__ import annotations

import asyncio
import logging

import msgspec

from actors.recorder import StoreUnavailable
from actors.runs import Runs
from engine import sync_replies
from engine.records import TriggerEvent
from store.errors import StoreError
from store.sync_calls import ReplyTo, SyncCalls, SyncRequest

log = logging.getLogger("rayhook.executor")

_decode_event = msgspec.msgpack.Decoder(TriggerEvent).decode
_encode = msgspec.msgpack.Encoder().encode


class SyncServer:
    """Attributes: the `calls` channels, this executor's `index`, `listening`
    (set while subscribed to its channel)."""

    def __init__(self, runs: Runs, calls: SyncCalls, index: int) -> None:
        self.runs = runs
        self.calls = calls
        self.index = index
        self.listening = asyncio.Event()
        self._answering: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        """Answer the calls published to this executor. The start is announced
        first: the ingress fails the calls a previous process of this executor
        took with it."""
        await self.calls.announce_start(self.index)
        async for request in self.calls.requests(self.index, self.listening):
            task = asyncio.get_running_loop().create_task(self._answer(request))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    async def reply(self, event: TriggerEvent, reply_to: ReplyTo | None = None) -> bytes:
        """Run a sync webhook's execution; the msgpack `Reply` it answers
        (b"" when the write that ended the run sent it to `reply_to`)."""
        try:
            execution, reply = await self.runs.execute(event, reply_to)
        except StoreUnavailable as exc:
            return _encode(sync_replies.unrecorded(event.id, str(exc)))
        if reply_to is not None and reply_to.sent:
            return b""
        workflow = self.runs.compiled(event.workflowId)
        timeout = workflow.options.timeout if workflow is not None else 0
        return _encode(sync_replies.finished(execution, reply, timeout))

    async def _answer(self, request: SyncRequest) -> None:
        event = _decode_event(request.event)
        reply_to = ReplyTo(request.reply_to, event.id)
        reply = await self.reply(event, reply_to)
        if reply_to.sent:
            return
        for attempt in range(3):
            try:
                await self.calls.answer(reply_to, reply)
                return
            except (StoreError, OSError) as exc:  # the caller answers 503 after its wait
                if attempt == 2:
                    log.warning("sync reply of %s could not be sent: %s", event.id, exc)
                await asyncio.sleep(0.2)
