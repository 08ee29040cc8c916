"""The timeline's line renderer (gateway/timeline.py): every kind has a readable line, a kind it does
not know renders generically, times are UTC with "+h:mm since start", and nothing people wrote can
mention anyone or break out of its line."""

from __future__ import annotations

import pytest

from domain._ops import event
from domain.models import EventKind, TimelineEvent
from gateway.timeline import event_text, render_event, since_start, user_ids_of
from tests.domain.helpers import T0, incident

INCIDENT = incident()
NAMES = {"alice": "alice", "bob": "bob"}


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_kind_renders_a_line_of_its_own(kind):
    line = render_event(event(INCIDENT, kind, "alice", T0 + 90 * 60_000), INCIDENT, T0 + 10**9, NAMES, number=7)
    assert line.startswith("`#7` 2023-11-14 23:43 UTC · +1:30 · @alice ")
    assert "\n" not in line and line.split("· @alice ", 1)[1].strip()


def test_a_kind_without_a_line_renders_by_its_name_and_unknown_people_are_named_so():
    future = TimelineEvent.model_construct(id="x", incident_id=INCIDENT.id, at=T0, kind="budget_approved",
                                           actor_id="zed", details={})
    assert event_text(future, INCIDENT) == "budget approved"
    assert render_event(future, INCIDENT, T0, NAMES).endswith("· a former user budget approved")


def test_times_before_the_start_and_after_now():
    assert since_start(T0 - 61 * 60_000, T0) == "-1:01" and since_start(T0 + 59_999, T0) == "+0:00"
    late = event(INCIDENT, EventKind.RESTARTED, "alice", T0 + 10 * 60_000)
    assert "· +0:05 ·" in render_event(late, INCIDENT, T0 + 5 * 60_000, NAMES)  # never shown in the future


def test_what_people_wrote_cannot_mention_or_break_out():
    hostile = "@channel **x** [click](javascript:alert(1))\n# heading <b>"
    for item in (
        event(INCIDENT, EventKind.STATUS_UPDATE, "alice", T0, message=hostile),
        event(INCIDENT, EventKind.STEP_RENAMED, "alice", T0, stage=0, index=0, title=hostile, previous_title=hostile),
        event(INCIDENT, EventKind.POST_ADDED, "bob", T0, post_id="p", author_id="alice", excerpt=hostile,
              note=hostile, permalink="javascript:alert(1)"),
        event(INCIDENT, EventKind.FIELD_CHANGED, "bob", T0, field_id="customer", name=hostile, old=hostile, new=hostile),
    ):
        line = render_event(item, INCIDENT, T0, NAMES)
        assert "\n" not in line and "@channel" not in line and "](javascript" not in line, line


def test_a_post_line_links_its_permalink_and_marks_a_delete():
    added = event(INCIDENT, EventKind.POST_ADDED, "bob", T0, post_id="p", author_id="alice", excerpt="hi",
                  permalink="https://chat.example.com/acme/pl/p")
    assert "added [a post](https://chat.example.com/acme/pl/p) by @alice: “hi”" in render_event(added, INCIDENT, T0, NAMES)
    deleted = added.model_copy(update={"details": {**added.details, "deleted": True}})
    assert render_event(deleted, INCIDENT, T0, NAMES).endswith("by @alice (since deleted)")
    assert user_ids_of(added) == {"bob", "alice"}


def test_a_field_change_reads_as_the_domain_records_it():
    """The line is drawn from what domain/fields.py set_field writes (old and new), not a guess."""
    from domain import fields

    incident = INCIDENT.model_copy(update={"created_at": T0})
    set_once, (first,) = fields.set_field(incident, "severity", "SEV2", "bob", T0)
    _, (second,) = fields.set_field(set_once, "severity", "SEV1", "bob", T0)
    _, (third,) = fields.set_field(set_once, "severity", None, "bob", T0)
    assert render_event(first, incident, T0, NAMES).endswith("@bob set Severity to “SEV2”")
    assert render_event(second, incident, T0, NAMES).endswith("@bob set Severity to “SEV1” (was “SEV2”)")
    assert render_event(third, incident, T0, NAMES).endswith("@bob cleared Severity (was “SEV2”)")
