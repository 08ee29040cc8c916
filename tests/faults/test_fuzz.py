"""Hostile input, fuzzed (a small run; `python -m bench.fuzz` runs thousands): slash-command text and
dialog submissions never make the bot fail, never show internals, and change nothing when rejected."""

from __future__ import annotations

from bench.fuzz import Fuzzer
from tests.e2e.conftest import make_playbook


async def test_fuzzed_commands_and_dialog_submissions(sandbox, bot):
    playbook = await make_playbook(bot, sandbox, members=("alice", "bob"))
    report = await Fuzzer(sandbox, bot, "alice", playbook.id).run(examples=36)
    assert report.problems == []
    assert report.commands == 36 and report.dialogs >= 12
    assert report.rejected > 0 and report.accepted > 0
