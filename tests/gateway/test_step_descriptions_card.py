"""Issue 14: step descriptions under their step on the card, titles in limited markdown, and a card at
every playbook limit still small enough for Mattermost (``model.PostPropsMaxRunes``)."""

from __future__ import annotations

import re

from domain import limits
from domain.models import Incident, Stage, Step, StepRef
from gateway import playbook_yaml as pyaml
from gateway.cards import CARD_DESCRIPTION_MAX, CardContext, incident_card, step_details
from gateway.playbook_yaml import PlaybookSpec, StageSpec, StepSpec
from gateway.signing import Signer
from sandbox.mention_text import post_mention_text
from sandbox.state import MAX_MESSAGE_RUNES, MAX_PROPS_RUNES, MENTION_RE, props_runes

ID = "a" * 26


def ids(n: int) -> str:
    return f"{n:026d}".replace("0", "b")


def make_incident(stages: tuple[Stage, ...], **extra) -> Incident:
    return Incident(id=ID, team_id=ids(1), channel_id=ids(2), name=extra.pop("name", "Checkout down"),
                    commander_id=ids(3), creator_id=ids(3), stages=stages, created_at=0, **extra)


def context() -> CardContext:
    return CardContext(usernames={ids(3): "alice"}, signer=Signer("s" * 40), action_url="http://bot/action", now_ms=0)


def step_texts(card: dict) -> list[str]:
    return [a["text"] for a in card["props"]["attachments"][2:] if "actions" in a or a["text"].startswith(("⬜", "✅"))]


def test_the_card_shows_the_styled_title_and_the_description_under_its_step():
    steps = (Step(id=ids(10), title="Page **on-call** via `pager`",
                  description="Use the **escalation** policy; see the [runbook](https://wiki.example.com/rb)."),
             Step(id=ids(11), title="No description"))
    card = incident_card(make_incident((Stage(id=ids(9), title="Triage", steps=steps),)), context())
    first, second = card["props"]["attachments"][2:4]
    assert first["text"] == ("⬜ **1.1** Page **on-call** via `pager`\n"
                             "Use the **escalation** policy; see the [runbook](https://wiki.example.com/rb).")
    assert "\\*" not in first["text"] and "\\[" not in first["text"]
    assert [a["name"] for a in first["actions"]] == ["Check", "Assign", "Details"]
    assert [a["name"] for a in second["actions"]] == ["Check", "Assign"]   # nothing more to show
    assert second["text"] == "⬜ **1.2** No description"


def test_a_long_or_multi_line_description_is_one_line_on_the_card():
    description = "First **line**\n\n" + "word " * 200 + "\n- a list item @all"
    step = Step(id=ids(10), title="Step", description=description)
    card = incident_card(make_incident((Stage(id=ids(9), title="Triage", steps=(step,)),)), context())
    text = card["props"]["attachments"][2]["text"]
    _title_line, description_line = text.split("\n")
    assert description_line.startswith("First **line** word word")
    assert description_line.endswith("…")
    visible = re.sub(r"\*\*", "", description_line)
    assert len(visible) <= CARD_DESCRIPTION_MAX
    assert not MENTION_RE.search(post_mention_text(card))


def test_details_show_everything_in_full():
    step = Step(id=ids(10), title="Page *on-call*", command="/page oncall", assignee_id=ids(3),
                description="# Why\nBecause **customers** wait.\n\n- call @all\n- see <https://status.example.com>")
    incident = make_incident((Stage(id=ids(9), title="Triage", steps=(step,)),))
    text = step_details(incident, StepRef(0, 0), {ids(3): "alice"})
    assert text.split("\n") == [
        "⬜ **1.1** Page *on-call*", "Stage 1/1: Triage · open · assigned to @alice", "Command: `/page oncall`", "",
        "**Why**", "Because **customers** wait.", "", "• call @\u2060all",
        "• see [https://status.example.com](https://status.example.com)"]


def test_the_details_button_is_on_ended_incidents_too():
    step = Step(id=ids(10), title="Step", description="Read me")
    card = incident_card(make_incident((Stage(id=ids(9), title="Triage", steps=(step,)),), status="ended",
                                       ended_at=1), context())
    actions = card["props"]["attachments"][2]["actions"]
    assert [a["name"] for a in actions] == ["Details"]


def test_a_card_at_every_playbook_limit_fits_in_a_post():
    """Worst case for size: every text at its limit, made of the characters that grow most when escaped
    and marshalled (``<`` becomes ``\\<`` on the card and ``\\u003c`` in Go's JSON), the active stage full."""
    hostile = "<@&"

    def text(n: int) -> str:
        return (hostile * n)[:n]

    stages = tuple(
        Stage(id=ids(100 + s), title=text(limits.STAGE_TITLE_MAX), steps=tuple(
            Step(id=ids(1000 + s * 100 + n), title=text(limits.STEP_TITLE_MAX),
                 description=text(limits.STEP_DESCRIPTION_MAX), command="/" + text(limits.STEP_COMMAND_MAX - 1),
                 assignee_id=ids(3))
            for n in range(limits.STEPS_PER_STAGE_MAX)))
        for s in range(limits.STAGES_MAX))
    incident = make_incident(stages, name=text(limits.INCIDENT_NAME_MAX),
                             description=text(limits.INCIDENT_DESCRIPTION_MAX), playbook_title=text(64))
    card = incident_card(incident, context())
    runes = props_runes(card["props"])
    print(f"card_props_runes_at_limits={runes} limit={MAX_PROPS_RUNES}")
    # Leave the server its own room (model.PostPropsMaxUserRunes = PostPropsMaxRunes - 40000).
    assert runes < MAX_PROPS_RUNES - 40_000
    assert len(card["message"]) <= MAX_MESSAGE_RUNES
    assert set(MENTION_RE.findall(post_mention_text(card))) == {"alice"}    # "assigned to @alice" only
    details = step_details(incident, StepRef(0, 0), {ids(3): "alice"})
    assert len(details) <= MAX_MESSAGE_RUNES


def test_descriptions_survive_the_yaml_round_trip_exactly():
    descriptions = ["**bold** _it_ `code` ~~old~~ [runbook](https://wiki.example.com/a_(b)?x=1&y=2)",
                    "# Heading\n- item: one\n  - nested\n> quote | pipe\n\n```\nkubectl get pods\n```",
                    "@all ~town-square <b>html</b> &amp; &#64;here \\*escaped\\*",
                    "line with trailing spaces   \n\tindented with a tab\n'quotes' \"double\" : colon # hash",
                    "- starts like a list", "key: value", "[x](javascript:alert(1))", "yes", "null", "0x1F"]
    spec = PlaybookSpec(title="Markdown", stages=(StageSpec(title="Stage", steps=tuple(
        StepSpec(title=f"Step **{n}** [link](https://e.com)", description=d) for n, d in enumerate(descriptions))),))
    parsed = pyaml.parse(pyaml.dump(spec))
    assert [s.description for s in parsed.stages[0].steps] == descriptions
    assert [s.title for s in parsed.stages[0].steps] == [s.title for s in spec.stages[0].steps]
