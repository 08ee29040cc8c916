"""The WebSocket side: mmpy_bot's event handling, extended to the events the bot needs.

mmpy_bot 2.2.1 dispatches only ``posted`` events (to ``@listen_to`` plugin methods).  This
subclass keeps that and also hands other events (reactions, membership changes ...) to
handlers registered here, tracks the connection state for health checks, and skips system
posts that mmpy_bot would otherwise offer to listeners.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mattermostautodriver.websocket import Websocket
from mmpy_bot.event_handler import EventHandler

log = logging.getLogger(__name__)

EventCallback = Callable[[dict[str, Any]], Awaitable[None]]
# Values that Mattermost sends as JSON strings inside ``data`` and that need a second decode.
_NESTED_JSON = ("post", "reaction", "channel", "mentions")


class _TrackedWebsocket(Websocket):
    """mattermostautodriver's client, reporting when a connection's read loop ends."""

    def __init__(self, options: dict, token: str, on_closed: Callable[[], None]) -> None:
        super().__init__(options, token)
        self._on_closed = on_closed

    async def _start_loop(self, websocket, event_handler):
        try:
            await super()._start_loop(websocket, event_handler)
        finally:
            self._on_closed()


class EventStream(EventHandler):
    """Receives the bot's WebSocket events and dispatches them on the bot's event loop."""

    def __init__(self, driver, settings, plugin_manager) -> None:
        super().__init__(driver, settings=settings, plugin_manager=plugin_manager)
        self._handlers: dict[str, list[EventCallback]] = {}
        self.connected = asyncio.Event()
        self.hellos = 0
        self.stopping = False
        self._websocket: _TrackedWebsocket | None = None
        self._tasks: set[asyncio.Task] = set()

    def on(self, event: str, callback: EventCallback) -> None:
        """Call ``callback(event)`` for every WebSocket event named ``event`` (JSON strings decoded)."""
        self._handlers.setdefault(event, []).append(callback)

    async def run(self) -> None:
        """Connect and keep reconnecting until cancelled."""
        self._websocket = _TrackedWebsocket(self.driver.options, self.driver.client.token, self._closed)
        await self._websocket.connect(self._handle_event)

    def _closed(self) -> None:
        if self.connected.is_set() and not self.stopping:
            log.warning("websocket connection lost; reconnecting")
        self.connected.clear()

    async def _handle_event(self, data: str) -> None:
        try:
            event = json.loads(data)
        except ValueError:
            log.warning("ignoring a websocket frame that is not JSON")
            return
        name = event.get("event")
        if name == "hello":
            self.hellos += 1
            self.connected.set()
            log.info("websocket connected (server %s)", event.get("data", {}).get("server_version", "?"))
        if name == "posted":
            post = _decoded(event.get("data", {}).get("post"))
            if isinstance(post, dict) and str(post.get("type", "")).startswith("system_"):
                return
            await self._handle_post(event)
        callbacks = self._handlers.get(name or "")
        if callbacks:
            data_field = event.get("data") or {}
            for key in _NESTED_JSON:
                if key in data_field:
                    data_field[key] = _decoded(data_field[key])
            for callback in callbacks:
                # Run each handler as its own task so a slow one never stalls reception.
                task = asyncio.create_task(self._guarded(callback, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(callback: EventCallback, event: dict[str, Any]) -> None:
        try:
            await callback(event)
        except Exception:
            log.exception("websocket %s handler failed", event.get("event"))


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
