"""Sending telemetry: the :class:`Telemetry` interface, a RudderStack sender and a null one.

Sending must never delay or break a user action. :meth:`RudderTelemetry.track` only puts the
event on rudder-sdk-python's bounded in-memory queue (no I/O, never raises); the SDK's own
daemon thread uploads batches with a short timeout and a couple of retries. When the data plane
is down or slow, a batch that still fails is dropped with one log line, and once the queue is
full further events are dropped (logged once) until it drains.
"""

from __future__ import annotations

import abc
import asyncio
import atexit
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.ids import new_id
from domain.models import Incident, Playbook, TimelineEvent
from version import __version__

from .events import (
    PlaybookChange,
    event_for_playbook_change,
    event_for_reminder_sent,
    events_for_incident_change,
)

log = logging.getLogger(__name__)

#: Store setting holding this installation's random diagnostic id (created on first use).
DIAGNOSTIC_ID_KEY = "telemetry.diagnostic_id"
UPLOAD_THREAD_NAME = "telemetry-upload"


class Telemetry(abc.ABC):
    """Where tracked events go. Every method returns at once and never raises."""

    enabled: bool = False

    @abc.abstractmethod
    def track(self, event: str, properties: Mapping[str, Any]) -> None:
        """Queue one event; the installation's metadata is added by the sender."""

    async def close(self) -> None:  # noqa: B027 - optional: a sender without a queue has nothing to close
        """Stop sending (bounded in time); events still queued may be dropped."""

    def incident_changed(self, incident: Incident, timeline_events: Iterable[TimelineEvent]) -> None:
        """Track a saved change of ``incident`` given the timeline events it recorded."""
        try:
            for name, properties in events_for_incident_change(incident, timeline_events):
                self.track(name, properties)
        except Exception:  # telemetry must never break the action that triggered it
            log.warning("telemetry: could not map a change of incident %s", incident.id, exc_info=True)

    def reminder_sent(self, incident: Incident, *, late: bool, posts: int) -> None:
        """Track an update reminder sent to the commander (ids, a flag and a count)."""
        try:
            name, properties = event_for_reminder_sent(incident, late=late, posts=posts)
            self.track(name, properties)
        except Exception:
            log.warning("telemetry: could not map a reminder of incident %s", incident.id, exc_info=True)

    def playbook_changed(self, change: PlaybookChange | str, playbook: Playbook) -> None:
        """Track a playbook ``created`` / ``updated`` (state after) / ``deleted`` (state before)."""
        try:
            name, properties = event_for_playbook_change(change, playbook)
            self.track(name, properties)
        except Exception:
            log.warning("telemetry: could not map a change of playbook %s", playbook.id, exc_info=True)


class NullTelemetry(Telemetry):
    """Telemetry switched off: nothing is queued, no thread exists, nothing is sent."""

    def track(self, event: str, properties: Mapping[str, Any]) -> None:
        return None


NULL_TELEMETRY = NullTelemetry()


@dataclass(frozen=True)
class RudderOptions:
    """Bounds of the RudderStack sender.

    At most ``max_queue_size`` events wait in memory; a batch (up to ``upload_size`` events,
    or what arrived within ``upload_interval`` seconds) gets ``1 + max_retries`` attempts of at
    most ``timeout`` seconds each, with a jittered exponential pause between them (< 1 s, < 2 s, ...).
    """

    max_queue_size: int = 1000
    upload_size: int = 100
    upload_interval: float = 0.5
    timeout: float = 5.0
    max_retries: int = 2
    close_timeout: float = 3.0


def _quiet_library_loggers() -> None:
    # The SDK logs every failed upload at ERROR and every event refused by a full queue, and
    # backoff logs each retry; the sender below logs one WARNING per dropped batch instead.
    logging.getLogger("rudderstack").setLevel(logging.CRITICAL)
    logging.getLogger("backoff").setLevel(logging.CRITICAL)


class RudderTelemetry(Telemetry):
    """Sends ``track`` events to a RudderStack data plane with rudder-sdk-python.

    Each event's ``anonymousId`` and ``properties.diagnosticID`` are the installation's diagnostic
    id; ``properties`` also carry ``serverVersion`` and ``pluginVersion``.
    """

    enabled = True

    def __init__(self, write_key: str, data_plane_url: str, *, diagnostic_id: str, server_version: str,
                 plugin_version: str = __version__, options: RudderOptions | None = None) -> None:
        # Imported here so that a bot with telemetry off never loads the SDK (which also reads a
        # .env file into the process environment when imported).
        from rudderstack.analytics.client import Client

        self.options = options or RudderOptions()
        self.data_plane_url = data_plane_url.rstrip("/")
        self.diagnostic_id = diagnostic_id
        self.metadata = {"diagnosticID": diagnostic_id, "serverVersion": server_version or "",
                         "pluginVersion": plugin_version}
        self._dropped = 0
        self._closed = False
        _quiet_library_loggers()
        self._client = Client(
            write_key, host=self.data_plane_url, on_error=self._on_error, sync_mode=False, send=True, gzip=True,
            max_queue_size=self.options.max_queue_size, upload_size=self.options.upload_size,
            upload_interval=self.options.upload_interval, timeout=self.options.timeout,
            max_retries=self.options.max_retries, thread=1)
        # close() stops the upload thread with a time bound; the SDK's exit hook would wait without one.
        atexit.unregister(self._client.join)
        for consumer in self._client.consumers or ():
            consumer.name = UPLOAD_THREAD_NAME

    def track(self, event: str, properties: Mapping[str, Any]) -> None:
        if self._closed:
            return
        try:
            queued, _ = self._client.track(anonymous_id=self.diagnostic_id, event=str(event),
                                           properties={**properties, **self.metadata})
        except Exception as error:
            log.warning("telemetry: event %s not queued: %s", event, error)
            return
        if not queued:
            if not self._dropped:
                log.warning("telemetry: %d events are waiting for the data plane at %s; dropping new events "
                            "until it catches up", self.options.max_queue_size, self.data_plane_url)
            self._dropped += 1
        elif self._dropped and self.queued <= self.options.max_queue_size // 4:
            # Re-armed only once the backlog is mostly gone, so a stuck data plane logs once, not per event.
            log.info("telemetry: the data plane caught up; %d event(s) were dropped", self._dropped)
            self._dropped = 0

    def _on_error(self, error: Exception, batch: list) -> None:
        # Called on the upload thread once a batch has used all its attempts.
        status = getattr(error, "status", None)
        detail = f"HTTP {status}" if isinstance(status, int) else " ".join(str(error).split())[:160]
        reason = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        log.warning("telemetry: dropped %d event(s): the data plane at %s did not take them (%s)",
                    len(batch), self.data_plane_url, reason)

    @property
    def queued(self) -> int:
        """Events waiting in memory (approximate)."""
        return self._client.queue.qsize()

    def flush(self) -> None:
        """Block until every queued event was uploaded or dropped; call it off the event loop."""
        self._client.flush()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._drain, self.options.close_timeout)
        for consumer in self._client.consumers or ():
            consumer.pause()  # the daemon thread ends by itself within upload_interval

    def _drain(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until every queued event was uploaded or dropped."""
        queue = self._client.queue
        deadline = time.monotonic() + timeout
        with queue.all_tasks_done:
            while queue.unfinished_tasks and (remaining := deadline - time.monotonic()) > 0:
                queue.all_tasks_done.wait(remaining)
            left = queue.unfinished_tasks
        if left:
            log.info("telemetry: stopped with %d event(s) unsent", left)


async def build(settings: Any, store: Any, server_version: str, *, options: RudderOptions | None = None) -> Telemetry:
    """The telemetry sender the settings ask for: RudderStack when switched on and both keys are
    set, otherwise :data:`NULL_TELEMETRY`. Never raises: a failure leaves telemetry off."""
    if not settings.telemetry_configured:
        reason = "switched off" if not settings.telemetry_enabled else "no RudderStack write key and data plane URL"
        log.info("telemetry is off (%s)", reason)
        return NULL_TELEMETRY
    try:
        diagnostic_id = await store.setting_or_default(DIAGNOSTIC_ID_KEY, new_id())
        sender = RudderTelemetry(settings.rudder_write_key, settings.rudder_data_plane_url,
                                 diagnostic_id=diagnostic_id, server_version=server_version, options=options)
    except Exception as error:
        log.warning("telemetry is off: it could not be started (%s)", error)
        return NULL_TELEMETRY
    log.info("telemetry is on: usage events (ids and counts only) go to %s", sender.data_plane_url)
    return sender
