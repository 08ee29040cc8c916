"""The WebSocket side: a connection that survives outages, feeding the one dispatch pipeline.

Every event, live or caught up, goes once to the dispatch callback (bot.py: ``Registry.event``, which
hands ``posted`` direct messages to mmpy_bot ``listen_to`` handlers and every event to its
``on_event`` handler); system posts are skipped.  mmpy_bot's own ``EventHandler`` is not used: its
loop is mattermostautodriver's synchronous-driver WebSocket, which never notices a dead peer and
reconnects after a fixed 5 s without recovering anything (protocol.md §6.1).  So the connection is
run here, over the bot's one client's address and token: a JSON ``ping`` after a quiet spell, a
connection with no frame at all for ``dead_after_s`` is abandoned, reconnects back off
exponentially with jitter, and after every reconnect the events missed in between are fetched over
REST (gateway/catchup.py) and dispatched exactly like live ones.  Posts and reactions are remembered
by id so none is acted on twice.

A checkpoint (how far events were handled, and the keys handled lately) is saved in the store
as events arrive and at shutdown, so after a restart the first connection catches up what
arrived while the bot was down — when that was recent (``restart_catchup_max_ms``).  The save
is debounced, so after a crash (not a clean stop) an event handled in the last moments before
it may be handled once more.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp

from gateway import fastjson
from gateway.catchup import CatchUp
from gateway.client import MattermostClient
from gateway.models import Post, Reaction, WebSocketEvent

log = logging.getLogger(__name__)

#: Where every event goes (nested JSON decoded): bot.py passes ``Registry.event``.
EventDispatch = Callable[[dict[str, Any]], Awaitable[None]]
#: Asked before an event is dispatched, with its durable key (posts and reactions; None for others):
#: False drops it (bot.py: ``Replica.claim_event``, so an event is handled once across replicas).
EventClaim = Callable[[str | None], Awaitable[bool]]
# Values that Mattermost sends as JSON strings inside ``data`` and that need a second decode.
_NESTED_JSON = ("post", "reaction", "channel", "mentions")


@dataclass(frozen=True)
class ConnectionPolicy:
    """Timings of the WebSocket connection (seconds unless named otherwise).

    Mattermost pings every 60 s and drops a client silent for 100 s; the defaults detect a dead
    server within ``dead_after_s`` and never let reconnect attempts hammer a recovering one.
    """

    connect_timeout_s: float = 10.0
    # Send a JSON ping after this much silence (its answer also tells the server's clock).
    ping_after_s: float = 30.0
    # No frame of any kind for this long: the peer is gone even if TCP has not noticed.
    dead_after_s: float = 75.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    # Posts and reactions this close before the last synced moment are fetched again, in case
    # events were stamped a little out of order (clustered servers); duplicates are dropped.
    catchup_overlap_ms: int = 5000
    # How many handled post/reaction keys are remembered to drop duplicates.
    remember: int = 20000
    # After a restart, events missed while the bot was down are caught up if its last checkpoint
    # is at most this old (older gaps are not replayed: nobody wants hour-old DMs answered).
    restart_catchup_max_ms: int = 15 * 60 * 1000

    def backoff(self, attempt: int) -> float:
        """Delay before reconnect attempt ``attempt`` (1-based): exponential, capped, jittered."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * (2 ** min(attempt - 1, 30)))
        return random.uniform(ceiling / 2, ceiling)


class Checkpoint(Protocol):
    """Where the stream keeps, across restarts, how far it has handled events (bot.py: the store)."""

    async def load(self) -> str | None: ...
    async def save(self, value: str) -> None: ...


class _Seen:
    """A bounded set of recently handled keys (with the server time they carry), oldest forgotten first.

    The checkpoint asks for the keys of the last few seconds every second: they are kept in stamp order
    too, so that costs what those keys cost, not what all of the ``size`` remembered do."""

    def __init__(self, size: int) -> None:
        #: key -> (stamp, insertion number), in insertion order (the oldest is forgotten first).
        self._keys: OrderedDict[Hashable, tuple[int, int]] = OrderedDict()
        self._size = size
        #: (stamp, insertion number, key) sorted; entries of forgotten keys are dropped now and then.
        self._by_stamp: list[tuple[int, int, Hashable]] = []
        self._added = 0

    def add(self, key: Hashable, at: int = 0) -> bool:
        """Remember ``key``; False when it was already known."""
        if key in self._keys:
            return False
        self._added += 1
        self._keys[key] = (at, self._added)
        # The insertion number breaks ties, so keys are never compared; stamps mostly grow, so this
        # is an append, and a late event (a catch-up) moves only the newer entries.
        insort(self._by_stamp, (at, self._added, key))
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
            if len(self._by_stamp) > 2 * self._size:
                self._by_stamp = sorted((stamp, n, k) for k, (stamp, n) in self._keys.items())
        return True

    def since(self, at: int) -> list[list[Any]]:
        """The keys stamped at or after ``at`` (server ms), as JSON-friendly lists, oldest stamp first."""
        keys = self._keys
        return [[list(key) if isinstance(key, tuple) else key, stamp]
                for stamp, n, key in self._by_stamp[bisect_left(self._by_stamp, (at,)):]
                if keys.get(key) == (stamp, n)]


# The checkpoint is written at most this often (seconds); before, every event cost a store write.
CHECKPOINT_INTERVAL_S = 1.0


class EventStream:
    """Receives the bot's WebSocket events and dispatches them on the bot's event loop."""

    def __init__(self, client: MattermostClient, dispatch: EventDispatch, *, policy: ConnectionPolicy | None = None,
                 checkpoint: Checkpoint | None = None, catch_up: bool = True,
                 wants: Callable[[dict[str, Any]], bool] | None = None,
                 claim: EventClaim | None = None) -> None:
        self.client = client
        self._claim = claim
        # Whether the dispatch target wants an event at all (bot.py: ``Registry.wants``); the others
        # are dropped here, once counted for the checkpoint, without a task of their own.
        self._wants = wants
        self.driver = client.driver
        self._dispatch_to = dispatch
        self._checkpoint = checkpoint
        self._checkpoint_dirty = asyncio.Event()
        self.checkpoint_interval_s = CHECKPOINT_INTERVAL_S
        self._checkpoint_task: asyncio.Task | None = None
        self.policy = policy or ConnectionPolicy()
        self._observers: list[tuple[Callable[[WebSocketEvent], None], frozenset[str] | None]] = []
        self._connection_observers: list[Callable[[bool], None]] = []
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()  # set while no connection is up (after the first one)
        self.caught_up = asyncio.Event()  # set when the last catch-up has finished
        self.hellos = 0
        self.catchups = 0  # completed catch-ups
        self.catchup_rest_calls = 0  # REST calls the last completed catch-up made
        self.stopping = False
        self._catchup = CatchUp(client) if catch_up else None
        self._catchup_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._seen = _Seen(self.policy.remember)
        self._seq = 0
        # Server time (ms) up to which every event is believed received, and the point catch-up
        # must start from after a loss (kept until a catch-up covering it has succeeded).
        self._synced_ms: int | None = None
        self._local_guess_ms: int | None = None
        self._resume_since: int | None = None
        self._restart_pending = False
        self._saved_synced_ms = 0
        self._generation = 0

    def observe(self, callback: Callable[[WebSocketEvent], None], events: Collection[str] | None = None) -> None:
        """Call ``callback(event)`` for every live event (``events``: only for those of these names), in
        order and at once (before any handler task runs), e.g. to keep channel membership
        (gateway/directory.py). An event no observer takes is not parsed into a model for them."""
        self._observers.append((callback, None if events is None else frozenset(events)))

    def on_connection(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(True)`` on every hello and ``callback(False)`` whenever the connection is lost."""
        self._connection_observers.append(callback)

    def _tell_connection(self, connected: bool) -> None:
        for callback in self._connection_observers:
            try:
                callback(connected)
            except Exception:
                log.exception("a connection observer failed")

    async def settled(self) -> None:
        """Wait until every event handed to the dispatch so far has been handled (tests and tools:
        what a handler records is then in the store)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def catching_up(self) -> bool:
        return self._catchup_task is not None and not self._catchup_task.done()

    # The connection ------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and keep reconnecting (with backoff) until cancelled."""
        attempt = 0
        await self._restore_checkpoint()
        if self._checkpoint is not None:
            self._checkpoint_task = asyncio.create_task(self._keep_checkpoint(), name="websocket-checkpoint")
        async with aiohttp.ClientSession() as session:
            try:
                while not self.stopping:
                    hellos_before = self.hellos
                    reason = "closed by the server"
                    try:
                        reason = await self._connect_once(session)
                    except (aiohttp.ClientError, TimeoutError, OSError) as error:
                        reason = f"{type(error).__name__}: {error}"
                    finally:
                        self._lost()
                    if self.stopping:
                        break
                    attempt = 1 if self.hellos > hellos_before else attempt + 1
                    delay = self.policy.backoff(attempt)
                    log.warning("websocket disconnected (%s); reconnect attempt %d in %.1f s", reason, attempt, delay)
                    await asyncio.sleep(delay)
            finally:
                if self._catchup_task is not None:
                    self._catchup_task.cancel()
                if self._checkpoint_task is not None:
                    self._checkpoint_task.cancel()

    # The checkpoint: how far events were handled, kept across restarts ---------------------

    async def _restore_checkpoint(self) -> None:
        """Resume from the last run: catch up what arrived while the bot was down (if recent)."""
        if self._checkpoint is None or self._catchup is None:
            return
        try:
            raw = await self._checkpoint.load()
            state = json.loads(raw) if raw else None
        except Exception:
            log.exception("ignoring an unreadable websocket checkpoint")
            return
        if not isinstance(state, dict) or not isinstance(state.get("synced_ms"), int):
            return
        age = int(time.time() * 1000) - state["synced_ms"]
        if age > self.policy.restart_catchup_max_ms:
            log.info("the bot was away for %d s; events from then are not replayed", age // 1000)
            return
        for key, stamp in state.get("handled") or []:
            self._seen.add(tuple(key) if isinstance(key, list) else key, stamp if isinstance(stamp, int) else 0)
        self._synced_ms = state["synced_ms"]
        # The first hello will count as a reconnection: catch up from here.
        self._resume_since = max(0, state["synced_ms"] - self.policy.catchup_overlap_ms)
        self._restart_pending = True

    def _checkpoint_state(self) -> str | None:
        if self._synced_ms is None or self._resume_since is not None:
            return None  # nothing known yet, or a gap still to catch up: keep the older checkpoint
        keep_from = self._synced_ms - 2 * self.policy.catchup_overlap_ms
        return json.dumps({"synced_ms": self._synced_ms, "handled": self._seen.since(keep_from)})

    async def save_checkpoint(self) -> None:
        """Write the checkpoint now (also called at shutdown)."""
        state = self._checkpoint_state()
        if self._checkpoint is not None and state is not None:
            synced = self._synced_ms or 0
            await self._checkpoint.save(state)
            self._saved_synced_ms = max(self._saved_synced_ms, synced)

    async def _keep_checkpoint(self) -> None:
        while True:
            await self._checkpoint_dirty.wait()
            self._checkpoint_dirty.clear()
            try:
                await self.save_checkpoint()
            except Exception:
                log.exception("could not save the websocket checkpoint")
            # At most one write per interval, however busy the channel: the events of the interval
            # share the next save (a clean stop saves at once; a crash may repeat them, see above).
            await asyncio.sleep(self.checkpoint_interval_s)

    async def _connect_once(self, session: aiohttp.ClientSession) -> str:
        """One connection, from handshake to its end; returns why it ended."""
        policy = self.policy
        async with session.ws_connect(self._url(), ssl=self._ssl(), autoping=False, heartbeat=None,
                                      timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                                      proxy=self.driver.options.get("proxy")) as ws:
            self._seq = 0
            await self._send(ws, "authentication_challenge", {"token": self.driver.client.token})
            loop = asyncio.get_running_loop()
            last_frame = loop.time()
            pinged = clock_asked = False
            hello_seen = self.hellos
            while True:
                if self.hellos == hello_seen:
                    deadline = last_frame + policy.connect_timeout_s  # no hello yet
                else:
                    deadline = last_frame + (policy.dead_after_s if pinged else policy.ping_after_s)
                try:
                    message = await ws.receive(timeout=max(deadline - loop.time(), 0.001))
                except TimeoutError:
                    if self.hellos == hello_seen:
                        return f"no hello within {policy.connect_timeout_s:g} s"
                    if pinged:
                        return f"no frame for {policy.dead_after_s:g} s"
                    await self._send(ws, "ping")
                    pinged = True
                    continue
                last_frame, pinged = loop.time(), False
                if message.type == aiohttp.WSMsgType.TEXT:
                    await self._handle_event(message.data)
                    if self.hellos > hello_seen and not clock_asked:
                        clock_asked = True
                        await self._send(ws, "ping")  # learn the server's clock straight away
                elif message.type == aiohttp.WSMsgType.PING:
                    await ws.pong(message.data)
                elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                      aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return "closed by the server" if message.type != aiohttp.WSMsgType.ERROR else f"error: {message.data}"
                # PONG and binary (msgpack) frames only prove the peer is alive.

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, action: str, data: dict | None = None) -> None:
        self._seq += 1
        await ws.send_str(json.dumps({"seq": self._seq, "action": action, "data": data or {}}))

    def _url(self) -> str:
        options = self.driver.options
        scheme = "wss" if options["scheme"] == "https" else "ws"
        return f"{scheme}://{options['url']}:{options['port']}{options['basepath']}/api/v4/websocket"

    def _ssl(self) -> ssl.SSLContext | bool:
        if self.driver.options["scheme"] != "https":
            return True  # aiohttp's default (unused for ws://)
        context = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)
        if not self.driver.options.get("verify", True):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _lost(self) -> None:
        if self.connected.is_set() and not self.stopping:
            log.warning("websocket connection lost; events from now on will be caught up after reconnecting")
        self.connected.clear()
        self.disconnected.set()
        self._tell_connection(False)
        if self.hellos and self._resume_since is None:
            synced = self._synced_ms if self._synced_ms is not None else self._local_guess_ms
            if synced is not None:
                self._resume_since = max(0, synced - self.policy.catchup_overlap_ms)

    # Catch-up ------------------------------------------------------------------------------

    def _connected_again(self) -> None:
        self._generation += 1
        if self._catchup is None or self._resume_since is None:
            return
        if self._catchup_task is not None:
            self._catchup_task.cancel()  # superseded: the new one starts from the same point
        self.caught_up.clear()
        self._catchup_task = asyncio.create_task(self._catch_up(self._resume_since, self._generation),
                                                 name="websocket-catch-up")

    async def _catch_up(self, since: int, generation: int) -> None:
        assert self._catchup is not None
        attempt = 0
        while True:
            attempt += 1
            try:
                count = await self._catchup.replay(since, self._dispatch)
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                delay = self.policy.backoff(attempt)
                log.warning("catch-up since %d failed (%s); retry in %.1f s", since, error, delay)
                await asyncio.sleep(delay)
        # Only a catch-up on the current connection closes the gap; after another loss the next
        # connection starts over from the same point.
        if generation == self._generation and self.connected.is_set():
            self._resume_since = None
            self._checkpoint_dirty.set()
        self.catchups += 1
        self.catchup_rest_calls = self._catchup.rest_calls
        self.caught_up.set()
        log.info("caught up: %d missed events since %d replayed", count, since)

    # Events --------------------------------------------------------------------------------

    async def _handle_event(self, data: str) -> None:
        try:
            event = fastjson.loads(data)
        except ValueError:
            log.warning("ignoring a websocket frame that is not JSON")
            return
        if not isinstance(event, dict):
            return
        if "seq_reply" in event:
            server_time = (event.get("data") or {}).get("server_time") if isinstance(event.get("data"), dict) else None
            if isinstance(server_time, int):
                self._synced(server_time)
            return
        if event.get("event") == "hello":
            self.hellos += 1
            self._local_guess_ms = int(time.time() * 1000)
            self.connected.set()
            self.disconnected.clear()
            self._tell_connection(True)
            log.info("websocket connected (server %s)", (event.get("data") or {}).get("server_version", "?"))
            if self.hellos > 1 or self._restart_pending:
                self._restart_pending = False
                self._connected_again()
            return
        name = event.get("event")
        observers = [observer for observer, names in self._observers if names is None or name in names]
        if observers:
            try:
                typed = WebSocketEvent.model_validate(event)
            except ValueError:
                log.warning("ignoring a malformed websocket event")
                return
            for observer in observers:
                try:
                    observer(typed)
                except Exception:
                    log.exception("an event observer failed on %s", typed.event)
        await self._dispatch(event)

    async def _dispatch(self, event: dict[str, Any]) -> None:
        """Hand one event (live or replayed) to the dispatch pipeline, once."""
        name = event.get("event") or ""
        data_field = event.get("data")
        if not isinstance(data_field, dict):
            return
        durable: str | None = None
        if name == "posted":
            # Decoded once: the handlers get the dict (mmpy_bot's Message wraps it), the stream the model.
            data_field["post"] = raw_post = _decoded(data_field.get("post"))
            post = _model(Post, raw_post)
            if post is None or not post.id:
                return
            self._synced(post.create_at)
            if not self._seen.add(("post", post.id), post.create_at):
                return
            durable = f"post:{post.id}"
            self._checkpoint_dirty.set()
            if post.is_system:
                return
        elif name == "reaction_added":
            reaction = _model(Reaction, data_field.get("reaction"))
            if reaction is None:
                return
            self._synced(reaction.create_at)
            key = ("reaction", reaction.post_id, reaction.user_id, reaction.emoji_name, reaction.create_at)
            if not self._seen.add(key, reaction.create_at):
                return
            durable = ":".join(("reaction", reaction.post_id, reaction.user_id, reaction.emoji_name,
                                str(reaction.create_at)))
            self._checkpoint_dirty.set()
        for field in _NESTED_JSON:
            if field in data_field:
                data_field[field] = _decoded(data_field[field])
        if self._wants is not None and not self._wants(event):
            return
        # Each event runs as its own task so a slow handler never stalls reception.
        task = asyncio.create_task(self._guarded(event, durable))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _synced(self, server_ms: Any) -> None:
        if isinstance(server_ms, int) and (self._synced_ms is None or server_ms > self._synced_ms):
            self._synced_ms = server_ms
            # Quiet periods (only pings) still move the checkpoint now and then.
            if server_ms - self._saved_synced_ms > 60_000:
                self._checkpoint_dirty.set()

    async def _guarded(self, event: dict[str, Any], durable: str | None = None) -> None:
        try:
            if self._claim is not None and not await self._claim(durable):
                return  # another replica handles it, or already has
            await self._dispatch_to(event)
        except Exception:
            log.exception("websocket %s handling failed", event.get("event"))


M = TypeVar("M", Post, Reaction)


def _model(model: type[M], value: Any) -> M | None:
    """The post or reaction of an event (sent as a JSON string), or None when it is not one."""
    value = _decoded(value)
    if not isinstance(value, dict):
        return None
    try:
        return model.model_validate(value)
    except ValueError:
        return None


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return fastjson.loads(value)
        except ValueError:
            return value
    return value
