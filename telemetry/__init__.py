"""Privacy-respecting usage telemetry (SPEC section 8): RudderStack ``track`` events made of ids and counts.

Build the sender once with :func:`build` and keep it in ``BotContext.telemetry``; services call
``incident_changed`` / ``playbook_changed`` after a change is saved.
"""

from .client import (
    DIAGNOSTIC_ID_KEY,
    NULL_TELEMETRY,
    UPLOAD_THREAD_NAME,
    NullTelemetry,
    RudderOptions,
    RudderTelemetry,
    Telemetry,
    build,
)
from .events import (
    ALLOWED_PROPERTIES,
    METADATA_PROPERTIES,
    PlaybookChange,
    TelemetryEvent,
    event_for_playbook_change,
    event_for_reminder_sent,
    event_for_timeline_event,
    events_for_incident_change,
)

__all__ = [
    "ALLOWED_PROPERTIES",
    "DIAGNOSTIC_ID_KEY",
    "METADATA_PROPERTIES",
    "NULL_TELEMETRY",
    "UPLOAD_THREAD_NAME",
    "NullTelemetry",
    "PlaybookChange",
    "RudderOptions",
    "RudderTelemetry",
    "Telemetry",
    "TelemetryEvent",
    "build",
    "event_for_playbook_change",
    "event_for_reminder_sent",
    "event_for_timeline_event",
    "events_for_incident_change",
]
