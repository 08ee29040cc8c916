"""``StartJoins``: the joins a start records itself, each recognised once, never for long, never many."""

from __future__ import annotations

from services.incidents import StartJoins


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_noted_join_is_taken_once():
    joins = StartJoins(Clock())
    joins.note("c1", "u1")
    assert not joins.take("c1", "u2") and not joins.take("c2", "u1")
    assert joins.take("c1", "u1")
    assert not joins.take("c1", "u1")  # a later add of the same person is news again
    assert len(joins) == 0


def test_a_refused_add_is_forgotten():
    joins = StartJoins(Clock())
    joins.note("c1", "u1")
    joins.forget("c1", "u1")
    assert not joins.take("c1", "u1")


def test_a_join_whose_event_never_came_is_forgotten_in_time():
    clock = Clock()
    joins = StartJoins(clock)
    joins.note("c1", "u1")
    clock.now += StartJoins.KEEP_S + 1
    assert not joins.take("c1", "u1")
    joins.note("c1", "u2")
    clock.now += StartJoins.KEEP_S + 1
    joins.note("c2", "u3")  # noting drops what is too old
    assert len(joins) == 1 and joins.take("c2", "u3")


def test_at_most_limit_joins_wait():
    joins = StartJoins(Clock())
    for n in range(StartJoins.LIMIT + 50):
        joins.note(f"c{n}", "u")
    assert len(joins) == StartJoins.LIMIT
    assert not joins.take("c0", "u") and joins.take(f"c{StartJoins.LIMIT + 49}", "u")
