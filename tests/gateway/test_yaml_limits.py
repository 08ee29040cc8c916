"""YAML limits (issue 13, F9): sizes checked before parsing, parsing off the event loop and
bounded in time, structure that cannot make a parse expensive (aliases, too many values)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from domain import limits
from gateway import playbook_yaml as pyaml
from gateway.playbook_yaml import PlaybookFormatError, PlaybookSpec, StageSpec, StepSpec, UserRef


class CountingClock:
    """A fake monotonic clock: each reading advances it by ``step`` seconds, and is counted."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        self.now += self.step
        return self.now


def full_playbook(description: str = "d") -> PlaybookSpec:
    """A playbook at every structural limit: all stages, all steps with every field, all members."""
    members = tuple(UserRef(f"user{n}") for n in range(limits.PLAYBOOK_MEMBERS_MAX))
    step = StepSpec(title="Step", description=description, command="/echo hi", assignee=UserRef("user1"))
    stages = tuple(StageSpec(title=f"Stage {n}", steps=(step,) * limits.STEPS_PER_STAGE_MAX)
                   for n in range(limits.STAGES_MAX))
    return PlaybookSpec(title="Everything", description="All of it", public=False, members=members, stages=stages)


def test_a_playbook_at_every_limit_is_read_whole():
    spec = full_playbook()
    text = pyaml.dump(spec)
    assert len(text) <= pyaml.MAX_YAML_CHARS
    assert pyaml.parse(text) == spec


def test_too_many_values_stop_the_parse_early():
    clock = CountingClock()
    flow = "title: x\nstages: [" + ", ".join(["a"] * 100_000) + "]\n"  # 300 kB of values: over the size too
    text = flow[: pyaml.MAX_YAML_CHARS - 2] + "]\n"
    with pytest.raises(PlaybookFormatError) as raised:
        pyaml.parse(text, pyaml.Deadline(at=float("inf"), clock=clock))
    assert f"the YAML has more than {pyaml.MAX_NODES} values" in str(raised.value)
    # The deadline is looked at once per token and once per value: the parse stopped at the limit
    # of values instead of reading all ~87,000 of them.
    assert clock.readings < 3 * pyaml.MAX_NODES


def test_an_alias_bomb_is_refused_before_anything_expands():
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
    clock = CountingClock()
    with pytest.raises(PlaybookFormatError) as raised:
        pyaml.parse("\n".join(levels) + "\n", pyaml.Deadline(at=float("inf"), clock=clock))
    assert "Line 2: anchors and aliases (*name) are not supported; write the values out." in str(raised.value)
    assert clock.readings < 100


async def test_a_slow_parse_is_abandoned_with_a_clear_message():
    clock = CountingClock(step=0.5)  # every token or value "takes" half a second
    with pytest.raises(PlaybookFormatError) as raised:
        await pyaml.read_playbook(pyaml.dump(full_playbook()), timeout_s=5.0, clock=clock)
    assert "reading the YAML took longer than 5 seconds, so it was abandoned" in str(raised.value)
    assert "nothing was saved" in str(raised.value)
    assert clock.readings < 20  # gave up at the deadline, not at the end of the file


async def test_text_over_a_paths_limit_is_refused_before_parsing(monkeypatch):
    parsed = []
    monkeypatch.setattr(pyaml, "parse", lambda *args: parsed.append(args))
    limit = pyaml.SizeLimit(3000, "Send it as a file instead.")
    text = "title: x\nstages: [{title: a}]\n# " + "x" * 215_000
    with pytest.raises(PlaybookFormatError) as raised:
        await pyaml.read_playbook(text, limit)
    assert f"The file: the YAML is {len(text):,} characters long; the most accepted here is 3,000. " \
           "Send it as a file instead." in str(raised.value)
    with pytest.raises(PlaybookFormatError, match="the most accepted here is 262,144"):
        await pyaml.read_stages("- title: a\n" + "#" * pyaml.MAX_YAML_CHARS)
    with pytest.raises(PlaybookFormatError, match="expected YAML text"):
        await pyaml.read_playbook(None)
    assert parsed == []


async def test_parsing_leaves_the_event_loop_free(monkeypatch):
    """While a parse runs, the event loop keeps turning: the parser waits for the loop to prove it
    ran, which could never happen if the parse were on the loop's own thread."""
    real_parse = pyaml.parse
    loop_ran = threading.Event()
    parse_saw_loop = []

    def parse_waiting_for_the_loop(text, deadline=None):
        parse_saw_loop.append(loop_ran.wait(10))
        return real_parse(text, deadline)

    monkeypatch.setattr(pyaml, "parse", parse_waiting_for_the_loop)
    reading = asyncio.ensure_future(pyaml.read_playbook(pyaml.dump(full_playbook())))
    ticks = 0
    while not reading.done():
        ticks += 1
        if ticks == 3:
            loop_ran.set()
        await asyncio.sleep(0)  # a loop-lag probe: counts turns of the loop while the parse runs
    assert (await reading).title == "Everything"
    assert parse_saw_loop == [True] and ticks > 3
