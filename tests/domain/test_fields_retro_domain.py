"""The pure rules of fields and the retrospective (issue 18): definitions, values, events."""

from __future__ import annotations

import pytest

from domain import fields, incidents, limits, retro
from domain.errors import InvalidState, ValidationError
from domain.models import DEFAULT_SEVERITY, EventKind, FieldDef, FieldKind, RetroSettings, RetroStatus, TimelineEvent
from domain.playbooks import new_playbook
from tests.storage.builders import T0, incident, playbook

SELECT = FieldDef(id="", name="Customer", kind=FieldKind.SELECT, options=(" ACME ", "Globex"))


def test_definitions_are_checked_and_given_ids():
    checked = fields.validate_fields([DEFAULT_SEVERITY, SELECT, FieldDef(id="", name="Due date", kind=FieldKind.DATE)])
    assert [f.id for f in checked] == ["severity", "customer", "due-date"]
    assert checked[1].options == ("ACME", "Globex")
    severity = fields.validate_field(FieldDef(id="", name="Impact", kind=FieldKind.SEVERITY, options=("High", "Low")))
    assert severity.id == "severity"


@pytest.mark.parametrize("defs, message", [
    ([SELECT, SELECT], "Two fields have the id"),
    ([SELECT, SELECT.model_copy(update={"id": "other", "name": "customer"})], "Two fields are named"),
    ([DEFAULT_SEVERITY, DEFAULT_SEVERITY.model_copy(update={"name": "Impact"})], "only one severity field"),
    ([FieldDef(id="", name="S", kind=FieldKind.SELECT)], "needs at least one option"),
    ([FieldDef(id="", name="S", kind=FieldKind.SELECT, options=("a", "A"))], "listed twice"),
    ([FieldDef(id="", name="S", kind=FieldKind.SELECT, options=("x" * 41,))], "at most 40"),
    ([FieldDef(id="", name="S", kind=FieldKind.SELECT, options=tuple(str(n) for n in range(21)))], "at most 20"),
    ([FieldDef(id="", name="T", kind=FieldKind.TEXT, options=("a",))], "only severity and select"),
    ([FieldDef(id="", name="x" * 25, kind=FieldKind.TEXT)], "at most 24"),
    ([FieldDef(id="", name="  ", kind=FieldKind.TEXT)], "must not be empty"),
    ([FieldDef(id="", name="a\nb", kind=FieldKind.TEXT)], "one line"),
    ([FieldDef(id='a"b', name="T", kind=FieldKind.TEXT)], "may hold only"),
    ([FieldDef(id="", name="!!!", kind=FieldKind.TEXT)], "may hold only"),
    ([FieldDef(id="x", name="S", kind=FieldKind.SEVERITY, options=("a",))], 'severity field\'s id is "severity"'),
    ([FieldDef(id=f"f{n}", name=f"F{n}", kind=FieldKind.TEXT) for n in range(limits.FIELDS_MAX + 1)], "at most 10"),
])
def test_bad_definitions_say_what_is_wrong(defs, message):
    with pytest.raises(ValidationError) as caught:
        fields.validate_fields(defs)
    assert message in caught.value.message and caught.value.field == "fields"


def test_a_playbook_validates_its_fields_and_retro():
    with pytest.raises(ValidationError):
        new_playbook(team_id="t", title="P", created_by="u", now=T0, fields=[SELECT, SELECT])
    with pytest.raises(ValidationError):
        new_playbook(team_id="t", title="P", created_by="u", now=T0, retro=RetroSettings(reminder_interval_ms=1000))
    with pytest.raises(ValidationError):
        new_playbook(team_id="t", title="P", created_by="u", now=T0, retro=RetroSettings(template="x" * 2501))


@pytest.mark.parametrize("kind, options, raw, stored", [
    (FieldKind.SEVERITY, ("SEV1", "SEV2"), " sev2 ", "SEV2"),
    (FieldKind.SELECT, ("ACME",), "acme", "ACME"),
    (FieldKind.DATE, (), "2024-02-29", "2024-02-29"),
    (FieldKind.USER, (), "3zyjrp1dbtgexqaw3e9yjqpxdr", "3zyjrp1dbtgexqaw3e9yjqpxdr"),
    (FieldKind.TEXT, (), "  a value  ", "a value"),
])
def test_values_are_parsed_to_what_is_stored(kind, options, raw, stored):
    assert fields.parse_value(FieldDef(id="f", name="F", kind=kind, options=options), raw) == stored


@pytest.mark.parametrize("kind, options, raw, message", [
    (FieldKind.SEVERITY, ("SEV1",), "SEV5", "Choose one of: SEV1"),
    (FieldKind.DATE, (), "2023-02-29", "YYYY-MM-DD"),
    (FieldKind.DATE, (), "2023-2-1", "YYYY-MM-DD"),
    (FieldKind.DATE, (), "２０２４-01-01", "YYYY-MM-DD"),
    (FieldKind.USER, (), "bob", "a user"),
    (FieldKind.TEXT, (), "x" * 151, "at most 150"),
    (FieldKind.TEXT, (), "a\u0000b", "control characters"),
    (FieldKind.TEXT, (), "   ", "Give F a value"),
])
def test_bad_values_say_what_fits(kind, options, raw, message):
    with pytest.raises(ValidationError) as caught:
        fields.parse_value(FieldDef(id="f", name="F", kind=kind, options=options), raw)
    assert message in caught.value.message and caught.value.field == "f"


def test_set_and_clear_record_old_and_new_and_no_op_records_nothing():
    inc, _ = incident(playbook(fields=(DEFAULT_SEVERITY, fields.validate_field(SELECT))))
    inc, events = fields.set_field(inc, "severity", "sev1", "alice", T0 + 1)
    assert inc.severity == "SEV1" and [(e.kind, e.details) for e in events] == [
        (EventKind.FIELD_CHANGED, {"field_id": "severity", "name": "Severity", "old": None, "new": "SEV1"})]
    same, none = fields.set_field(inc, "severity", "SEV1", "bob", T0 + 2)
    assert same == inc and none == []
    inc, events = fields.set_field(inc, "severity", None, "bob", T0 + 3)
    assert inc.field_values == {} and events[0].details["old"] == "SEV1" and events[0].details["new"] is None
    with pytest.raises(ValidationError):
        fields.set_field(inc, "colour", "red", "bob", T0)
    ended, _ = incidents.end_incident(inc, "alice", T0 + 4)
    with pytest.raises(InvalidState):
        fields.set_field(ended, "severity", "SEV2", "alice", T0 + 5)


def test_find_field_by_name_or_id_and_list_filters():
    defs = fields.validate_fields([DEFAULT_SEVERITY, SELECT])
    assert fields.find_field(defs, "CUSTOMER").id == "customer" and fields.find_field(defs, "severity").id == "severity"
    with pytest.raises(ValidationError) as caught:
        fields.find_field(defs, "owner")
    assert "Its fields: Severity, Customer" in caught.value.message
    assert fields.list_filter(defs, "customer", "acme")[1:] == ("customer", "ACME")
    assert fields.list_filter(defs, "Due Date", "2024-01-01")[1:] == ("due-date", "2024-01-01")
    with pytest.raises(ValidationError):
        fields.list_filter(defs, "severity", " ")


def _event(kind, at):
    return TimelineEvent(id=f"e{at}", incident_id="i", at=at, kind=kind, actor_id="a")


def test_retro_ops_and_figures():
    settings = RetroSettings(template="## Lessons", reminder_interval_ms=60_000)
    inc, _ = incident(playbook(retro=settings))
    assert inc.retro == settings and inc.retro_status is None
    with pytest.raises(InvalidState):
        retro.publish_retro(inc, "text", "alice", T0)
    ended, _ = incidents.end_incident(inc, "alice", T0 + 90 * 60_000)
    assert ended.retro_status is RetroStatus.PENDING
    figures = retro.key_figures(ended, [_event(EventKind.CREATED, T0), _event(EventKind.STATUS_UPDATE, T0 + 300_000),
                                        _event(EventKind.STATUS_UPDATE, T0 + 900_000)], T0 + 10**9)
    assert (figures.duration_ms, figures.steps_done, figures.steps_total, figures.first_update_after_ms) == (
        90 * 60_000, 0, 6, 300_000)
    text = retro.prefill(ended, figures)
    assert text == ("**Duration:** 1 h 30 min\n**Steps done:** 0 of 6\n**Time to first update:** 5 min\n\n"
                    "## Lessons")
    with pytest.raises(ValidationError):
        retro.publish_retro(ended, "  ", "alice", T0)
    with pytest.raises(ValidationError):
        retro.publish_retro(ended, "x" * (limits.RETRO_TEXT_MAX + 1), "alice", T0)
    published, events = retro.publish_retro(ended, " Done. ", "alice", T0 + 1)
    assert (published.retro_status, published.retro_text, published.retro_by) == (RetroStatus.PUBLISHED, "Done.",
                                                                                   "alice")
    assert events[0].kind is EventKind.RETRO_PUBLISHED and retro.prefill(published, figures) == "Done."
    with pytest.raises(InvalidState):
        retro.skip_retro(published, "alice", T0)
    skipped, events = retro.skip_retro(ended, "alice", T0)
    assert skipped.retro_status is RetroStatus.SKIPPED and events[0].kind is EventKind.RETRO_SKIPPED
    assert retro.skip_retro(skipped, "alice", T0) == (skipped, [])
    # Restarted and ended again, a published retrospective stays published.
    again, _ = incidents.end_incident(incidents.restart_incident(published, "a", T0 + 2)[0], "a", T0 + 3)
    assert again.retro_status is RetroStatus.PUBLISHED
