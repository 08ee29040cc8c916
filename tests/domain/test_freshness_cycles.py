"""State marks follow history: a cycle never gives an old mark back (issue 13, after F7).

All in one millisecond, the worst case: an injected clock that does not move.
"""

from __future__ import annotations

import pytest

from domain import checklist, incidents
from domain.freshness import StaleCard, require_fresh, run_mark, stage_mark, status_mark, step_mark
from domain.models import StepRef

from .helpers import T0, incident

STEP = StepRef(0, 0)


def test_next_then_previous_gives_a_new_stage_mark_in_one_millisecond():
    inc = incident()
    drawn = stage_mark(inc)
    moved, _ = incidents.next_stage(inc, "bob", T0)
    back, _ = incidents.previous_stage(moved, "bob", T0)
    assert back.active_stage == inc.active_stage
    assert len({drawn, stage_mark(moved), stage_mark(back)}) == 3
    with pytest.raises(StaleCard, match="active stage is now 1/3"):
        require_fresh(back, drawn, what="stage")
    require_fresh(back, stage_mark(back), what="stage")


def test_end_then_restart_and_back_give_new_status_marks_in_one_millisecond():
    inc = incident()
    marks = [status_mark(inc)]
    for _ in range(2):
        inc, _ = incidents.end_incident(inc, "bob", T0)
        marks.append(status_mark(inc))
        inc, _ = incidents.restart_incident(inc, "bob", T0)
        marks.append(status_mark(inc))
    assert len(set(marks)) == 5
    for old in marks[:-1]:
        with pytest.raises(StaleCard):
            require_fresh(inc, old)


def test_check_uncheck_check_gives_new_step_marks_in_one_millisecond():
    inc = incident()
    marks = [step_mark(inc.step(STEP))]
    for _ in range(2):
        inc, _ = checklist.check_step(inc, STEP, "bob", T0)
        marks.append(step_mark(inc.step(STEP)))
        inc, _ = checklist.uncheck_step(inc, STEP, "bob", T0)
        marks.append(step_mark(inc.step(STEP)))
    assert len(set(marks)) == 5


def test_a_run_gives_the_run_button_a_new_mark_and_leaves_check_alone():
    inc = incident()
    check_drawn, run_drawn = step_mark(inc.step(STEP)), run_mark(inc.step(STEP))
    ran, _ = checklist.run_step(inc, STEP, "bob", T0)
    ran_again, _ = checklist.run_step(ran, STEP, "bob", T0)
    assert ran.step(STEP).last_run_at == T0 and ran_again.step(STEP).last_run_at == T0 + 1
    require_fresh(ran_again, check_drawn, step=STEP)  # a run does not make the Check button stale
    with pytest.raises(StaleCard, match=r"step 1\.1's command has run since the card was drawn"):
        require_fresh(ran, run_drawn, step=STEP, what="run")
    with pytest.raises(StaleCard, match=r"has run since"):
        require_fresh(ran_again, run_mark(ran.step(STEP)), step=STEP, what="run")
    require_fresh(ran_again, run_mark(ran_again.step(STEP)), step=STEP, what="run")


def test_marks_of_an_incident_stored_before_the_times_existed_are_what_its_card_carries():
    """Incidents stored before schema 6 have no times: their marks (and so their cards) are unchanged."""
    inc = incident()
    assert inc.stage_set_at is None and inc.restarted_at is None and inc.step(STEP).last_run_at is None
    assert stage_mark(inc) == "stage0/3"
    assert status_mark(inc) == "ongoing@0"
    assert run_mark(inc.step(STEP)) == step_mark(inc.step(STEP)) == "open@0"


def test_a_mark_of_another_kind_is_never_current():
    inc = incident()
    for forged in ("", None, 0, stage_mark(inc) + " ", status_mark(inc).upper(), step_mark(inc.step(STEP)) + "/ran"):
        with pytest.raises(StaleCard):
            require_fresh(inc, forged, step=STEP, what="run")
