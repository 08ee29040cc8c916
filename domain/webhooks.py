"""Outgoing webhooks, the pure part (issue 21; docs/webhooks.md): which timeline events are sent,
under which names, and how a list of targets is edited so that a target keeps its id (and so its
signing secret) while its URL stays."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import ValidationError
from .ids import new_id
from .models import EventKind, WebhookTarget

#: The lifecycle events a webhook receives, by timeline event kind, with their names on the wire.
WEBHOOK_EVENTS: dict[EventKind, str] = {
    EventKind.CREATED: "incident.created",
    EventKind.STATUS_UPDATE: "incident.status_update",
    EventKind.COMMANDER_CHANGED: "incident.commander_changed",
    EventKind.ENDED: "incident.ended",
    EventKind.RESTARTED: "incident.restarted",
    EventKind.RETRO_PUBLISHED: "incident.retro_published",
}
#: The short names people write (``events: [created, ended]``), by kind.
EVENT_WORDS: dict[str, EventKind] = {
    "created": EventKind.CREATED,
    "status_update": EventKind.STATUS_UPDATE,
    "commander_changed": EventKind.COMMANDER_CHANGED,
    "ended": EventKind.ENDED,
    "restarted": EventKind.RESTARTED,
    "retro_published": EventKind.RETRO_PUBLISHED,
}
#: The short name of each kind (as the YAML writes it).
WORD_OF: dict[str, str] = {kind.value: word for word, kind in EVENT_WORDS.items()}
#: Targets per playbook, and per team.
WEBHOOKS_MAX = 5


def event_kinds(words: Iterable[str]) -> tuple[str, ...]:
    """People's event names (``created``, or ``incident.created``) as stored kinds; empty: all."""
    kinds: list[str] = []
    for word in words:
        name = word.strip().lower().removeprefix("incident.")
        if name not in EVENT_WORDS:
            raise ValidationError(f"{word!r} is not a webhook event; use one of: {', '.join(EVENT_WORDS)}.",
                                  field="webhooks")
        kind = EVENT_WORDS[name].value
        if kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


def wants(target: WebhookTarget, kind: EventKind) -> bool:
    """Whether the target receives events of ``kind``."""
    return kind in WEBHOOK_EVENTS and (not target.events or kind.value in target.events)


def edited_targets(current: Sequence[WebhookTarget],
                   wanted: Sequence[tuple[str, tuple[str, ...]]]) -> tuple[WebhookTarget, ...]:
    """The targets ``wanted`` (URL, event kinds) as stored: a URL already configured keeps its id
    (and so its secret); a new one gets a new id. Duplicate URLs and more than :data:`WEBHOOKS_MAX`
    targets are refused."""
    if len(wanted) > WEBHOOKS_MAX:
        raise ValidationError(f"At most {WEBHOOKS_MAX} webhooks; {len(wanted)} were given.", field="webhooks")
    by_url = {target.url: target for target in current}
    seen: set[str] = set()
    targets = []
    for url, events in wanted:
        if url in seen:
            raise ValidationError(f"The webhook {url[:80]!r} is listed twice.", field="webhooks")
        seen.add(url)
        existing = by_url.get(url)
        targets.append(WebhookTarget(id=existing.id if existing else new_id(), url=url, events=tuple(events)))
    return tuple(targets)


def new_targets(before: Sequence[WebhookTarget], after: Sequence[WebhookTarget]) -> list[WebhookTarget]:
    """Targets of ``after`` that ``before`` did not have (their secrets are shown once)."""
    known = {target.id for target in before}
    return [target for target in after if target.id not in known]


__all__ = ["EVENT_WORDS", "WEBHOOKS_MAX", "WEBHOOK_EVENTS", "WORD_OF", "edited_targets", "event_kinds", "new_targets", "wants"]
