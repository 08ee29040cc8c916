"""The configured trigger in everything users see (issue 16, ui slice).

A bot run with ``command_trigger="ir"`` is used through help, a usage error, a start, its card, a
list and a direct message: no ``/incident`` (and no unrendered command placeholder) anywhere in
what people see. A static scan keeps ``"/incident`` literals out of the code that writes to users.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from domain.errors import COMMAND
from tests.e2e.conftest import make_playbook

ROOT = Path(__file__).resolve().parents[2]
TRIGGER = "ir"


def seen(*texts: object) -> str:
    return "\n".join(json.dumps(text, ensure_ascii=False) if not isinstance(text, str) else text for text in texts)


def assert_trigger_only(text: str) -> None:
    # The command, not a word that starts with it: links to the backstage's /backstage/incidents/<id> pages are fine.
    assert not re.search(r"/incident\b", text), text
    assert COMMAND not in text and "\u2060" not in text, text  # every placeholder rendered


def visible_posts(sandbox, channel_id: str) -> str:
    """Every post of the channel as people see it: messages, attachment texts, fields, button labels."""
    parts = []
    for post in sandbox.posts(channel_id):
        parts.append(post["message"])
        for attachment in post.get("props", {}).get("attachments", []):
            parts += [str(attachment.get(key, "")) for key in ("title", "text", "fallback")]
            parts += [f"{f['title']} {f['value']}" for f in attachment.get("fields", [])]
            parts += [a["name"] for a in attachment.get("actions", [])]
    return "\n".join(parts)


async def test_a_bot_with_another_trigger_never_shows_incident(sandbox, start_bot):
    bot = await start_bot(command_trigger=TRIGGER)
    await make_playbook(bot, sandbox, members=("alice",))
    alice = sandbox.user("alice")
    shown: list[str] = []

    help_reply = await alice.command("town-square", f"/{TRIGGER} help")
    assert help_reply.status == 200 and f"/{TRIGGER} start" in seen(*help_reply.ephemeral)
    shown += help_reply.ephemeral

    usage = await alice.command("town-square", f"/{TRIGGER} assign")
    assert f"Usage: `/{TRIGGER} assign" in seen(*usage.ephemeral), usage.ephemeral
    shown += usage.ephemeral

    near = await alice.command("town-square", f"/{TRIGGER} chek 1.1")
    assert f"/{TRIGGER} check 1.1" in seen(*near.ephemeral)
    shown += near.ephemeral

    # A domain refusal (it names a command) outside an incident channel, and one inside.
    outside = await alice.command("town-square", f"/{TRIGGER} check 1.1")
    assert f"/{TRIGGER} list" in seen(*outside.ephemeral), outside.ephemeral
    shown += outside.ephemeral

    started = await alice.command("town-square", f"/{TRIGGER} start Checkout errors")
    assert started.dialog is not None, started.ephemeral
    shown.append(seen(started.dialog))
    options = started.dialog["dialog"]["elements"][0]["options"]
    outcome = await alice.submit_dialog({"playbook": options[0]["value"], "name": "Checkout errors",
                                         "description": ""})
    assert outcome.closed, (outcome.errors, outcome.error)
    channel = sandbox.channel("acme", "checkout-errors")

    stage = await alice.command(channel["id"], f"/{TRIGGER} stage")
    assert f"/{TRIGGER} stage next" in seen(*stage.ephemeral)
    shown += stage.ephemeral
    await alice.command(channel["id"], f"/{TRIGGER} stage 3")
    last = await alice.command(channel["id"], f"/{TRIGGER} stage next")
    assert f"/{TRIGGER} end" in seen(*last.ephemeral), last.ephemeral  # a domain message, rendered
    shown += last.ephemeral

    listed = await alice.command(channel["id"], f"/{TRIGGER} list")
    shown += listed.ephemeral
    shown.append(visible_posts(sandbox, channel["id"]))  # the card, the opening post, the announcements

    dm = await alice.dm_channel("incident")
    await alice.post(dm, "help")
    await alice.post(dm, "playbook list")
    bot_id = sandbox.user_id("incident")
    await sandbox.wait_for(lambda: len([p for p in sandbox.posts(dm) if p["user_id"] == bot_id]) >= 2)
    shown.append(visible_posts(sandbox, dm))

    for text in shown:
        assert_trigger_only(text)
    everything = seen(*shown)
    assert f"/{TRIGGER} " in everything


def test_no_incident_literal_in_the_code_that_writes_to_users():
    """Commands are written with gateway.messages.command (or the domain's COMMAND placeholder):
    ``"/incident`` appears only in the default setting and the helper's docstring."""
    pattern = re.compile(r"/incident\b")
    allowed = {("gateway/messages.py", "the default trigger gives"), ("domain/errors.py", "by default")}
    found = []
    for package in ("gateway", "services", "plugins", "domain", "backstage"):
        for path in sorted([*(ROOT / package).rglob("*.py"), *(ROOT / package).rglob("*.html")]):
            relative = path.relative_to(ROOT).as_posix()
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) and not any(relative == file and marker in line for file, marker in allowed):
                    found.append(f"{relative}:{number}: {line.strip()}")
    assert found == []
