"""The RudderStack sender with the real rudder-sdk-python client against a local data plane."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from types import SimpleNamespace

import pytest

from domain.ids import is_valid_id
from storage import open_store
from telemetry import (
    DIAGNOSTIC_ID_KEY,
    NULL_TELEMETRY,
    UPLOAD_THREAD_NAME,
    NullTelemetry,
    RudderOptions,
    RudderTelemetry,
    build,
)
from tests.telemetry.sink import Sink, closed_port_url
from version import __version__

DIAG = "d" * 26
FAST = RudderOptions(upload_interval=0.05, timeout=2.0, max_retries=0, close_timeout=2.0)


class LogWaiter(logging.Handler):
    """Collects telemetry log records from any thread and lets a coroutine wait for them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.DEBUG)
        self.loop = loop
        self.records: list[logging.LogRecord] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.loop.call_soon_threadsafe(self.changed.set)

    def messages(self, needle: str = "") -> list[str]:
        return [r.getMessage() for r in self.records if needle in r.getMessage()]

    async def wait_for(self, predicate, timeout: float = 10.0):
        async def loop():
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()
            return predicate(self)
        return await asyncio.wait_for(loop(), timeout)


@pytest.fixture
async def logs():
    waiter = LogWaiter(asyncio.get_running_loop())
    watched = [logging.getLogger(name) for name in ("telemetry", "rudderstack", "backoff")]
    levels = [logger.level for logger in watched]
    for logger in watched:
        logger.addHandler(waiter)
    logging.getLogger("telemetry").setLevel(logging.INFO)
    yield waiter
    for logger, level in zip(watched, levels):
        logger.removeHandler(waiter)
        logger.setLevel(level)


def sender(url: str, options: RudderOptions = FAST, **kwargs) -> RudderTelemetry:
    return RudderTelemetry("write-key-1", url, diagnostic_id=DIAG, server_version="9.11.0", options=options, **kwargs)


def upload_threads() -> list[threading.Thread]:
    from rudderstack.analytics.consumer import Consumer
    return [t for t in threading.enumerate() if isinstance(t, Consumer) or t.name == UPLOAD_THREAD_NAME]


async def test_events_reach_the_data_plane_with_metadata(sink):
    telemetry = sender(sink.url + "/")
    try:
        telemetry.track("incident_created", {"ID": "i" * 26, "NumChecklists": 2})
        telemetry.track("stage_changed", {"IncidentID": "i" * 26, "UserID": "u" * 26})
        await sink.wait_for(lambda s: len(s.events()) == 2)
    finally:
        await telemetry.close()
    for batch in sink.batches:
        assert batch.path == "/v1/batch"
        assert batch.write_key == "write-key-1"
        assert batch.headers["Content-Type"] == "application/json"
        assert "sentAt" in batch.body
    first, second = sink.events()
    assert first["event"] == "incident_created" and second["event"] == "stage_changed"
    assert first["properties"] == {"ID": "i" * 26, "NumChecklists": 2, "diagnosticID": DIAG,
                                   "serverVersion": "9.11.0", "pluginVersion": __version__}
    for message in (first, second):
        assert message["type"] == "track"
        assert message["anonymousId"] == DIAG and message.get("userId") is None
        assert message["channel"] == "server"
        assert set(message["context"]) == {"library"}
        assert {"messageId", "timestamp"} <= set(message)
    assert first["messageId"] != second["messageId"]


async def test_metadata_cannot_be_overridden_by_event_properties(sink):
    telemetry = sender(sink.url)
    try:
        telemetry.track("stage_changed", {"diagnosticID": "forged", "pluginVersion": "0"})
        await sink.wait_for(lambda s: s.events())
    finally:
        await telemetry.close()
    assert sink.events()[0]["properties"]["diagnosticID"] == DIAG
    assert sink.events()[0]["properties"]["pluginVersion"] == __version__


async def test_events_are_batched(sink):
    telemetry = sender(sink.url, RudderOptions(upload_interval=0.5, upload_size=100))
    try:
        for n in range(20):
            telemetry.track("checklist_item_checked", {"n": n})
        await asyncio.to_thread(telemetry.flush)
    finally:
        await telemetry.close()
    assert [m["properties"]["n"] for m in sink.events()] == list(range(20))
    assert len(sink.batches) <= 3


async def test_track_returns_at_once_and_the_queue_is_bounded_when_the_data_plane_hangs(hanging_sink, logs):
    """200 events tracked while the upload hangs at the data plane (held by the test): none waits for it."""
    options = RudderOptions(max_queue_size=10, upload_size=5, upload_interval=0.05, timeout=30, close_timeout=0.2)
    telemetry = sender(hanging_sink.url, options)
    try:
        telemetry.track("checklist_item_checked", {"n": -1})
        await hanging_sink.wait_for(lambda s: s.batches)  # the upload thread is now held by the data plane
        for n in range(200):
            telemetry.track("checklist_item_checked", {"n": n})  # returns although nothing can be sent
        assert len(hanging_sink.batches) == 1  # still held: every call above returned without the network
    finally:
        await telemetry.close()
    assert telemetry.queued <= 10
    full = logs.messages("dropping new events")
    assert len(full) == 1  # logged once, not once per dropped event
    assert not [r for r in logs.records if r.name in ("rudderstack", "backoff")]


def dropped_count(waiter: LogWaiter) -> int:
    return sum(int(re.search(r"dropped (\d+)", m).group(1)) for m in waiter.messages("telemetry: dropped"))


async def test_a_dead_data_plane_drops_the_batch_with_one_log_line(logs):
    telemetry = sender(closed_port_url(), RudderOptions(upload_interval=0.05, timeout=2.0, max_retries=1))
    try:
        telemetry.track("incident_created", {"ID": "x"})
        telemetry.track("incident_ended", {"ID": "x"})
        await logs.wait_for(lambda w: dropped_count(w) >= 2)
    finally:
        await telemetry.close()
    assert dropped_count(logs) == 2
    for message in logs.messages("dropped"):
        assert "telemetry: dropped" in message and "did not take them" in message and "\n" not in message
    assert not [r for r in logs.records if r.name in ("rudderstack", "backoff")]


async def test_server_errors_are_retried_a_bounded_number_of_times(logs):
    failing = Sink(mode="error")
    await failing.start()
    telemetry = sender(failing.url, RudderOptions(upload_interval=0.05, max_retries=2))
    try:
        telemetry.track("incident_created", {"ID": "x"})
        await logs.wait_for(lambda w: w.messages("dropped 1 event"))
    finally:
        await telemetry.close()
        await failing.stop()
    assert len(failing.batches) == 3  # the first attempt and two retries
    assert len({b.body["batch"][0]["messageId"] for b in failing.batches}) == 1


async def test_close_is_bounded_even_while_an_upload_hangs(hanging_sink, logs):
    telemetry = sender(hanging_sink.url, RudderOptions(upload_interval=0.05, timeout=30, close_timeout=0.2))
    telemetry.track("incident_created", {"ID": "x"})
    await hanging_sink.wait_for(lambda s: s.batches)
    telemetry.track("incident_ended", {"ID": "x"})  # queued behind the held upload
    await telemetry.close()  # returns while the data plane still holds the upload (released only at teardown)
    assert len(hanging_sink.batches) == 1 and logs.messages("stopped with 2 event(s) unsent")  # held + queued
    telemetry.track("incident_ended", {"ID": "x"})  # after close: ignored, no error
    assert telemetry.queued == 1  # only the one that was waiting before close
    await telemetry.close()  # twice is fine


async def test_track_never_raises(sink, logs):
    telemetry = sender(sink.url)
    try:
        telemetry.track("too_big", {"blob": "a" * (5 << 20)})  # over the SDK's 4 MB message limit
        telemetry.track("odd_values", {"value": object()})
        telemetry.track("fine", {})
        await sink.wait_for(lambda s: s.events("fine"))
    finally:
        await telemetry.close()
    assert logs.messages("not queued")
    assert not sink.events("too_big")


async def test_the_upload_thread_is_named_and_stops_on_close(sink):
    telemetry = sender(sink.url)
    assert [t.name for t in upload_threads() if t.is_alive()].count(UPLOAD_THREAD_NAME) >= 1
    await telemetry.close()
    for thread in upload_threads():
        await asyncio.to_thread(thread.join, 5.0)
    assert not [t for t in upload_threads() if t.is_alive()]


# build() ----------------------------------------------------------------------------------------

class ExplodingStore:
    def __getattr__(self, name):
        raise AssertionError(f"telemetry off must not touch the store ({name})")


def settings(**values):
    base = {"telemetry_enabled": True, "rudder_write_key": None, "rudder_data_plane_url": None}
    base.update(values)
    base["telemetry_configured"] = bool(base["telemetry_enabled"] and base["rudder_write_key"]
                                        and base["rudder_data_plane_url"])
    return SimpleNamespace(**base)


@pytest.mark.parametrize("values", [
    {},
    {"rudder_write_key": "k"},
    {"rudder_data_plane_url": "http://127.0.0.1:9"},
    {"rudder_write_key": "k", "rudder_data_plane_url": "http://127.0.0.1:9", "telemetry_enabled": False},
])
async def test_off_unless_switched_on_and_both_keys_set(values):
    before = set(threading.enumerate())
    telemetry = await build(settings(**values), ExplodingStore(), "9.11.0")
    assert telemetry is NULL_TELEMETRY and isinstance(telemetry, NullTelemetry) and not telemetry.enabled
    assert set(threading.enumerate()) - before == set()
    telemetry.track("incident_created", {"ID": "x"})
    await telemetry.close()


async def test_real_settings_are_off_by_default(tmp_path, monkeypatch):
    from settings import Settings
    for name in ("CC_TELEMETRY_ENABLED", "CC_RUDDER_WRITE_KEY", "CC_RUDDER_DATA_PLANE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file
    values = Settings(mattermost_url="http://127.0.0.1:1", bot_token="t", data_dir=tmp_path)
    assert values.telemetry_enabled and not values.telemetry_configured
    assert await build(values, ExplodingStore(), "9.11.0") is NULL_TELEMETRY


async def test_the_diagnostic_id_is_generated_once_and_kept_in_the_store(tmp_path, sink):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    on = settings(rudder_write_key="k", rudder_data_plane_url=sink.url)
    store = await open_store(url)
    try:
        first = await build(on, store, "9.11.0")
        second = await build(on, store, "9.11.0")
        await first.close()
        await second.close()
        stored = await store.get_setting(DIAGNOSTIC_ID_KEY)
    finally:
        await store.close()
    assert isinstance(first, RudderTelemetry) and first.enabled
    assert first.diagnostic_id == second.diagnostic_id == stored and is_valid_id(stored)
    reopened = await open_store(url)
    try:
        third = await build(on, reopened, "9.12.0")
        await third.close()
    finally:
        await reopened.close()
    assert third.diagnostic_id == stored and third.metadata["serverVersion"] == "9.12.0"


async def test_build_never_raises():
    class BrokenStore:
        async def setting_or_default(self, key, default):
            raise RuntimeError("database is gone")

    telemetry = await build(settings(rudder_write_key="k", rudder_data_plane_url="http://127.0.0.1:9"),
                            BrokenStore(), "9.11.0")
    assert telemetry is NULL_TELEMETRY


def test_a_context_without_a_sender_has_the_null_one():
    from services.context import BotContext

    ctx = BotContext(settings=None, client=None, signer=None, store=None)  # type: ignore[arg-type]
    assert ctx.telemetry is NULL_TELEMETRY
