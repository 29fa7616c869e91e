"""What one ingress worker process holds: the Redis connection and its group-commit
batcher, the stores, the route table and the router to the execution actors. Built at lifespan
startup (inside the event loop), closed at shutdown."""

from __future__ import annotations

import logging

from actors.router import Router
from engine.settings import Settings
from ingress.routes import RouteTable
from store.batching import PipelineBatcher
from store.connection import Connection
from store.dedupe import SyncDedupe
from store.execution_search import ExecutionSearch
from store.executions import ExecutionLog
from store.history import HistoryStore
from store.history_queue import HistoryQueue
from store.inbox import Inbox
from store.keys import Keys
from store.memory import RedisMemory
from store.metrics import ClusterFigures
from store.sync_calls import SyncCalls
from store.workflows import WorkflowStore

log = logging.getLogger("rayhook.ingress")


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.namespace)
        self.redis = Connection(settings.redis_url)
        client = self.redis.client
        self.batcher = PipelineBatcher(client)
        self.workflows = WorkflowStore(client, self.keys)
        self.inbox = Inbox(client, self.keys, self.batcher)
        self.executions = ExecutionLog(client, self.keys, self.batcher)
        self.dedupe = SyncDedupe(client, self.keys, self.batcher)
        self.history = HistoryStore(settings.history_database, pool_size=4, max_overflow=4)
        self.history_queue = HistoryQueue(client, self.keys)
        self.search = ExecutionSearch(self.executions, self.history, self.history_queue)
        self.routes = RouteTable(self.workflows)
        self.memory = RedisMemory(client, settings.redis_high_watermark)
        self.figures = ClusterFigures(client, self.keys)
        self.router = Router(settings, SyncCalls(client, self.keys))

    async def start(self) -> None:
        # The actors are created (if they do not run) through a Ray session this
        # process then closes: it connects again only for a request that needs
        # Ray (actors/ray_session.py).
        await self.router.start_pool()
        try:
            await self.router.sync.start()
        except Exception as exc:  # Redis down at boot: sync calls answer 503 until it is back
            log.warning("startup could not subscribe for sync replies: %s", exc)
        try:
            await self.redis.load_scripts()
            await self.routes.refresh_all()
        except Exception as exc:  # Redis down at boot: serve 503s until it is back
            log.warning("startup could not reach redis: %s", exc)
        await self.router.ray.close()
        self.routes.start()
        self.memory.start()

    async def stop(self) -> None:
        await self.router.ray.stop()
        await self.router.sync.stop()
        await self.memory.stop()
        await self.routes.stop()
        await self.batcher.drain()
        await self.redis.close()
        await self.history.close()
