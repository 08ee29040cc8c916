"""YAML through every way in (issue 13, F9): the import dialog, the edit dialog and a file sent by
direct message each take only their documented size, refused before parsing with a message
naming the limit; a large permitted file is parsed without stalling the bot."""

from __future__ import annotations

import asyncio
import threading

from gateway import playbook_yaml as pyaml
from gateway.playbook_yaml import PlaybookSpec, StageSpec, StepSpec
from tests.e2e.conftest import make_playbook
from tests.e2e.test_playbooks import bot_texts_since, dm_bot, dm_mark, stored


def big_stages(description_chars: int = 200) -> tuple[StageSpec, ...]:
    """Every stage and step a playbook may have, with long descriptions: valid, and ~240 kB."""
    return tuple(StageSpec(title=f"Stage {s}", steps=tuple(
        StepSpec(title=f"Step {s}.{n}", description="d" * description_chars) for n in range(1, 51)))
        for s in range(1, 21))


def big_playbook(title: str) -> str:
    return pyaml.dump(PlaybookSpec(title=title, stages=big_stages()))


async def test_the_import_dialog_refuses_more_than_its_3000_characters(sandbox, bot):
    alice = sandbox.user("alice")
    assert (await alice.command("town-square", "/incident playbook import")).dialog is not None
    text = big_playbook("Huge")
    assert 200_000 < len(text) < pyaml.MAX_YAML_CHARS
    outcome = await alice.submit_dialog({"yaml": text})
    assert not outcome.closed
    assert (f"- The file: the YAML is {len(text):,} characters long; the most accepted here is 3,000. Send longer "
            "playbooks to me as a .yaml file in a direct message (up to 256 KB).") in outcome.errors["yaml"]
    assert await stored(bot, sandbox, "Huge") is None


async def test_the_edit_dialog_refuses_stages_longer_than_its_field(sandbox, bot):
    playbook = await make_playbook(bot, sandbox, title="Small", members=("alice",))
    alice = sandbox.user("alice")
    assert (await alice.command("town-square", "/incident playbook edit Small")).dialog is not None
    outline = pyaml.dump_stages(big_stages())
    outcome = await alice.submit_dialog({"title": "Small", "description": "", "channel": "public",
                                         "stages": outline})
    assert not outcome.closed
    assert "the most accepted here is 3,000. Edit longer playbooks with quick edits" in outcome.errors["stages"]
    assert (await bot.store.get_playbook(playbook.id)).stages == playbook.stages


async def test_a_file_over_256_kb_is_refused_without_reading_it(sandbox, bot):
    text = big_playbook("Too big") + "#" * 30_000 + "\n"
    assert len(text.encode()) > 256 * 1024
    replies = await dm_bot(sandbox, "alice", "", files=[("too-big.yaml", text.encode())])
    assert replies[0]["message"] == "too-big.yaml is larger than 256 KB; a playbook file is much smaller."
    assert await stored(bot, sandbox, "Too big") is None


async def test_the_bot_answers_while_a_large_file_is_parsed(sandbox, bot, monkeypatch):
    """``/incident help`` is answered while a 240 kB import is still being parsed (the parser is
    held until then); were parsing on the event loop, nothing could answer until it finished."""
    real_parse = pyaml.parse
    loop = asyncio.get_running_loop()
    started, release = asyncio.Event(), threading.Event()
    parses: list[str] = []

    def held_parse(text, deadline=None):
        loop.call_soon_threadsafe(started.set)
        release.wait(10)
        parses.append("done")
        return real_parse(text, deadline)

    monkeypatch.setattr(pyaml, "parse", held_parse)
    alice = sandbox.user("alice")
    dm = await alice.dm_channel("incident")
    mark = await dm_mark(sandbox, "alice")
    text = big_playbook("Large")
    await alice.post(dm, "", files=[("large.yaml", text.encode())])
    await asyncio.wait_for(started.wait(), 10)
    helped = await alice.command("town-square", "/incident help")
    assert helped.status == 200 and "/incident start" in helped.response["text"]
    assert parses == []  # answered while the parse was still running
    release.set()
    replies = await sandbox.wait_for(lambda: bot_texts_since(sandbox, dm, mark))
    assert replies[0].startswith("Imported a new playbook **Large**: 20 stages, 1000 steps")
    assert parses == ["done"]
