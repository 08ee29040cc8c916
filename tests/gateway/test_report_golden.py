"""The incident report is deterministic: a fixed incident, its events and names always render to
exactly tests/golden/report.md (every section filled: fields, a commander change, participants,
steps checked/assigned/run, status updates, a published retrospective, a post added to the
timeline and a hidden event, a restart).

After an intended change of the report, regenerate the file and review its diff:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/gateway/test_report_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

from domain import checklist, incidents, playbooks, updates
from domain.models import EventKind, RetroStatus, TimelineEvent
from gateway.report import ReportInput, render_report, report_filename, user_ids

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "report.md"
T0 = 1_764_590_400_000  # 2025-12-01 12:00 UTC
MIN = 60_000
NAMES = {"u-alice": "alice", "u-bob": "bob", "u-carol": "carol"}


def _event(seq: int, incident_id: str, at: int, kind: EventKind, actor: str, **details) -> TimelineEvent:
    return TimelineEvent(id=f"ev{seq:03d}", incident_id=incident_id, at=at, kind=kind, actor_id=actor,
                         details=details)


def the_report_input() -> tuple[ReportInput, int]:
    playbook = playbooks.new_playbook(
        team_id="team1", title="Payments outage", created_by="u-alice", now=T0,
        stages=[playbooks.StageDraft(title="Triage", steps=(playbooks.StepDraft(title="Page the **on-call**"),
                                                            playbooks.StepDraft(title="Check dashboards",
                                                                                command="/grafana payments"))),
                playbooks.StageDraft(title="Mitigation", steps=(playbooks.StepDraft(title="Roll back"),))])
    incident, events = incidents.start_incident(playbook, name="Checkout 502s @channel", channel_id="ch1",
                                                creator_id="u-alice", now=T0, incident_id="inc1",
                                                description="Card payments fail with *502* since the deploy.")
    incident = incident.model_copy(update={"field_values": {"severity": "SEV2"}})
    events = [event.model_copy(update={"id": "ev000"}) for event in events]

    def do(operation, *args, **kwargs) -> None:
        nonlocal incident
        incident, new = operation(incident, *args, **kwargs)
        events.extend(new)

    do(updates.post_update, "Investigating 502s on checkout.\nNext update in 30m @all", "u-alice", T0 + 4 * MIN,
       next_in_ms=30 * MIN)
    do(checklist.assign_step, (0, 0), "u-bob", "u-alice", T0 + 5 * MIN, assignee_in_channel=True)
    do(checklist.check_step, (0, 0), "u-bob", T0 + 7 * MIN)
    do(checklist.run_step, (0, 1), "u-carol", T0 + 9 * MIN)
    do(incidents.change_commander, "u-bob", "u-alice", T0 + 10 * MIN, new_commander_in_channel=True)
    events.append(_event(900, incident.id, T0 + 11 * MIN, EventKind.FIELD_CHANGED, "u-bob",
                         field_id="severity", name="Severity", old=None, new="SEV2"))
    events.append(_event(901, incident.id, T0 + 8 * MIN, EventKind.POST_ADDED, "u-carol", post_id="p1",
                         author_id="u-carol", excerpt="Deploy 4512 rolled out at 11:58",
                         permalink="https://chat.example.com/_redirect/pl/p1", note="likely cause"))
    do(checklist.check_step, (0, 1), "u-carol", T0 + 14 * MIN)
    do(incidents.next_stage, "u-bob", T0 + 15 * MIN)
    do(updates.follow, "u-carol", T0 + 16 * MIN)
    events.append(_event(902, incident.id, T0 + 17 * MIN, EventKind.EVENT_HIDDEN, "u-bob"))
    do(incidents.end_incident, "u-bob", T0 + 40 * MIN, final_update="Rolled back; checkout is healthy.")
    do(incidents.restart_incident, "u-bob", T0 + 50 * MIN)
    do(checklist.check_step, (1, 0), "u-bob", T0 + 55 * MIN)
    do(incidents.end_incident, "u-bob", T0 + 60 * MIN)
    incident = incident.model_copy(update={
        "retro_status": RetroStatus.PUBLISHED, "retro_by": "u-bob", "retro_published_at": T0 + 120 * MIN,
        "retro_text": "## What happened\nA bad deploy.\n\n## Actions\n- Canary deploys"})
    events.append(_event(903, incident.id, T0 + 120 * MIN, EventKind.RETRO_PUBLISHED, "u-bob"))
    events = [event.model_copy(update={"id": f"ev{n:03d}"}) for n, event in enumerate(events)]
    # The hidden event names its target by id: keep it pointing at the follow.
    number, follow = next((n, e) for n, e in enumerate(events, start=1) if e.kind is EventKind.FOLLOWED)
    events = [e.model_copy(update={"details": {"event_id": follow.id, "number": number}})
              if e.kind is EventKind.EVENT_HIDDEN else e for e in events]
    participants = ["u-alice", "u-bob", "u-carol"]
    names = {user: NAMES[user] for user in user_ids(incident, events, participants) if user in NAMES}
    return ReportInput(incident, events, "checkout-502s", participants, names), T0 + 180 * MIN


def test_the_report_matches_the_golden_file():
    data, now = the_report_input()
    text = render_report(data, now)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), "the report changed: see this file's docstring"


def test_the_report_is_the_same_however_often_it_is_made():
    data, now = the_report_input()
    assert render_report(data, now) == render_report(the_report_input()[0], now)
    assert report_filename(data.incident, data.channel_name, now) == "checkout-502s-report-20251201-1500.md"


def test_no_mention_in_the_report_is_live():
    data, now = the_report_input()
    text = render_report(data, now)
    for mention in ("@channel", "@all"):
        assert mention not in text  # written with a zero-width joiner after the @
