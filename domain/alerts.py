"""Alerts from monitoring (issue 21): what is recorded of each alert and of each alert group.

Pure data; the store keeps them (``Store.record_alerts`` and friends), services/alerts.py decides
what to post. An *alert* is one fingerprint from one source (Alertmanager, Grafana, the generic
form); a *group* is what one routing rule made of one group key: one suggestion post or one
incident, however often its alerts repeat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertMode(StrEnum):
    """What a routing rule does with a new group: offer a Start button, or start the incident."""

    SUGGEST = "suggest"
    DECLARE = "declare"


class GroupState(StrEnum):
    """Where a group's notifications went."""

    NEW = "new"              # recorded, nothing posted yet
    SUGGESTED = "suggested"  # a suggestion post in the triage channel (``post_id``)
    DECLARED = "declared"    # an incident was started (``incident_id``)
    SUMMARISED = "summarised"  # over the channel's flood limit: counted in the window's summary post
    FAILED = "failed"        # the rule could not be applied (``last_error`` says why)


@dataclass(frozen=True, slots=True)
class AlertIn:
    """One alert as a notification carried it, after parsing (gateway/alerts.py)."""

    fingerprint: str
    status: AlertStatus
    title: str
    group_key: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    url: str = ""


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One alert as stored: keyed by (source, fingerprint)."""

    source: str
    fingerprint: str
    group_id: str
    status: AlertStatus
    title: str
    url: str
    first_seen: int
    last_seen: int
    count: int
    resolved_at: int | None = None
    #: The group's ``seq`` when the alert was last notified, and when it last turned resolved: a post
    #: showing ``posted_seq`` has shown every change with a smaller or equal number.
    seq: int = 0
    resolved_seq: int | None = None
    #: As the latest notification carried them.
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupTouch:
    """What one notification adds to a group (``Store.record_alerts``)."""

    id: str
    source: str
    group_key: str
    rule: str
    channel_id: str
    mode: AlertMode


@dataclass(frozen=True, slots=True)
class AlertGroup:
    """One rule's alerts of one group key, as stored.

    ``seq`` grows with every notification that touched the group; ``posted_seq`` is the ``seq`` the
    last post or edit showed, so the group has news to show while ``seq > posted_seq``."""

    id: str
    source: str
    group_key: str
    rule: str
    channel_id: str
    mode: AlertMode
    first_seen: int
    last_seen: int
    notifications: int
    seq: int
    posted_seq: int = 0
    state: GroupState = GroupState.NEW
    post_id: str | None = None
    incident_id: str | None = None
    #: When its first post (or incident) was made: what the channel's flood limit counts.
    created_post_at: int | None = None
    #: When the last post about it was made (an incident's repeats are rate limited by it).
    posted_at: int | None = None
    last_error: str | None = None

    @property
    def has_news(self) -> bool:
        return self.seq > self.posted_seq


@dataclass(frozen=True, slots=True)
class GroupPosted:
    """What the notifier records after posting about a group (only its own columns)."""

    id: str
    posted_seq: int
    state: GroupState
    post_id: str | None = None
    incident_id: str | None = None
    created_post_at: int | None = None
    posted_at: int | None = None
    last_error: str | None = None


__all__ = ["AlertGroup", "AlertIn", "AlertMode", "AlertRecord", "AlertStatus", "GroupPosted", "GroupState",
           "GroupTouch"]
