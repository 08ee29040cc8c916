"""Step commands, fuzzed (a small run; `python -m bench.fuzz --examples 0 --steps 300` runs more): backticks,
mentions, steps that run steps in every spelling, other triggers, huge and unicode commands, saved
through the playbook and run by button and by command. A refused save changes nothing; the "ran" post
mentions nobody but the runner; no step runs a step; nothing runs with more rights than the runner's."""

from __future__ import annotations

from bench.fuzz import Fuzzer
from tests.e2e.conftest import make_playbook


async def test_fuzzed_step_commands(sandbox, bot):
    playbook = await make_playbook(bot, sandbox, members=("alice",), title="Fuzz steps",
                                   commands={"Acknowledge the alert": "/echo first"})
    report = await Fuzzer(sandbox, bot, "alice", playbook.id).run(examples=0, step_examples=12, seed=1)
    assert report.problems == []
    assert report.steps == 12
    assert report.steps_saved > 0 and report.rejected > 0
