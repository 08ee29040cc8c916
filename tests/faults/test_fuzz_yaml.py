"""YAML of fuzzed shapes and sizes (a small run; `python -m bench.fuzz --examples 0 --yaml 200` runs
more), through the import dialog and by direct message: always answered, never internals shown,
nothing changed when refused, and /incident help answered meanwhile."""

from __future__ import annotations

from bench.fuzz import Fuzzer
from tests.e2e.conftest import make_playbook


async def test_fuzzed_yaml_sizes_and_shapes(sandbox, bot):
    playbook = await make_playbook(bot, sandbox, members=("alice",))
    report = await Fuzzer(sandbox, bot, "alice", playbook.id).run(examples=0, yaml_examples=10)
    assert report.problems == []
    assert report.yaml == 10 and report.commands == 0
    assert report.rejected > 0
    assert len(report.help_ms) == 10
