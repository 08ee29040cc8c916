"""Kept button signatures (issue 15, CPU per render): a card drawn again signs only what changed, and
what it hands out is exactly what a fresh signer makes — per payload model, per channel, never shared."""

from __future__ import annotations

from domain import checklist, incidents, playbooks
from domain.models import StepRef
from gateway.cards import CardContext, incident_card
from gateway.payloads import CheckStep, FollowIncident, UncheckStep
from gateway.signing import SignatureError, Signer


def test_a_kept_context_is_the_one_a_fresh_signer_makes_and_verifies():
    kept, fresh = Signer("s3cret"), Signer("s3cret")
    payload = CheckStep(incident_id="i" * 26, step_id="s" * 26, mark="m1")
    first = kept.action_context(payload, "c" * 26)
    again = kept.action_context(CheckStep(incident_id="i" * 26, step_id="s" * 26, mark="m1"), "c" * 26)
    assert first == again == fresh.action_context(payload, "c" * 26)
    assert kept.open_action_context(again, "c" * 26) == ("check", {"incident_id": "i" * 26, "step_id": "s" * 26,
                                                                   "mark": "m1"})


def test_kept_contexts_depend_on_the_model_the_channel_and_every_field():
    signer = Signer("s3cret")
    ids = {"incident_id": "i" * 26, "step_id": "s" * 26, "mark": "m1"}
    check = signer.action_context(CheckStep(**ids), "c" * 26)
    uncheck = signer.action_context(UncheckStep(**ids), "c" * 26)  # the same fields, another model
    elsewhere = signer.action_context(CheckStep(**ids), "d" * 26)
    marked = signer.action_context(CheckStep(**{**ids, "mark": "m2"}), "c" * 26)
    viewed = signer.action_context(CheckStep(**ids, from_view=True), "c" * 26)
    assert (check["action"], uncheck["action"]) == ("check", "uncheck")
    assert len({c["signature"] for c in (check, uncheck, elsewhere, marked, viewed)}) == 5
    assert viewed["payload"] == {**ids, "from_view": True}
    for context, channel in ((check, "c" * 26), (uncheck, "c" * 26), (elsewhere, "d" * 26), (marked, "c" * 26)):
        signer.open_action_context(context, channel)
    try:
        signer.open_action_context(elsewhere, "c" * 26)
    except SignatureError:
        pass
    else:
        raise AssertionError("a context kept for one channel was accepted in another")


def test_what_a_caller_does_to_its_context_never_reaches_the_next_one():
    signer = Signer("s3cret")
    payload = FollowIncident(incident_id="i" * 26)
    first = signer.action_context(payload, "c" * 26)
    first["payload"]["incident_id"] = "forged"
    first["signature"] = "changed"
    second = signer.action_context(payload, "c" * 26)
    assert second == Signer("s3cret").action_context(payload, "c" * 26)
    assert second["payload"] is not first["payload"]


def test_the_kept_signatures_are_bounded():
    signer = Signer("s3cret")
    for n in range(Signer.CONTEXTS_KEPT + 500):
        signer.action_context(FollowIncident(incident_id=f"{n:026d}"), "c" * 26)
    assert len(signer._contexts) == Signer.CONTEXTS_KEPT
    # The oldest went first: the newest are still kept (no new entry), a forgotten one is signed
    # again, the same way, in place of the oldest left.
    signer.action_context(FollowIncident(incident_id=f"{Signer.CONTEXTS_KEPT + 499:026d}"), "c" * 26)
    newest = list(signer._contexts)
    assert signer.action_context(FollowIncident(incident_id=f"{0:026d}"), "c" * 26) == Signer(
        "s3cret").action_context(FollowIncident(incident_id=f"{0:026d}"), "c" * 26)
    assert len(signer._contexts) == Signer.CONTEXTS_KEPT and list(signer._contexts)[:-1] == newest[1:]


def test_a_card_drawn_again_is_the_card_a_fresh_signer_draws():
    stages = [playbooks.StageDraft(title=f"Stage {s + 1}", steps=tuple(
        playbooks.StepDraft(title=f"Step {n}", description="more" if n % 2 else "", command="/echo" if n == 0 else "")
        for n in range(4))) for s in range(3)]
    playbook = playbooks.new_playbook(team_id="t" * 26, title="Response", created_by="u" * 26,
                                      now=1_700_000_000_000, stages=stages)
    incident, _ = incidents.start_incident(playbook, name="Payments", channel_id="c" * 26, creator_id="u" * 26,
                                           now=1_700_000_000_000)

    def context(signer: Signer) -> CardContext:
        return CardContext(usernames={"u" * 26: "alice"}, signer=signer, action_url="http://bot/actions",
                           now_ms=1_700_000_100_000)

    signer = Signer("s3cret")
    first = incident_card(incident, context(signer))
    kept = len(signer._contexts)
    assert kept == sum(len(a.get("actions", [])) for a in first["props"]["attachments"])
    checked, _ = checklist.check_step(incident, StepRef(0, 0), "u" * 26, 1_700_000_050_000)
    again = incident_card(checked, context(signer))
    assert again == incident_card(checked, context(Signer("s3cret")))
    assert again != first  # the checked step's row and buttons changed ...
    # ... and only its buttons were signed anew (its Check became Uncheck, Run has a new mark).
    assert len(signer._contexts) == kept + 2
    assert incident_card(incident, context(signer)) == first
