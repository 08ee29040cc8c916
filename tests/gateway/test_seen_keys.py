"""The WebSocket stream's memory of handled events (``gateway.events._Seen``): bounded, oldest forgotten
first, and asked every second for the keys of the last few seconds (the checkpoint) — which it answers
from a stamp-ordered list, exactly as a scan of every remembered key would."""

from __future__ import annotations

import random
from collections import OrderedDict

from gateway.events import _Seen


class Plain:
    """The memory as first written: one insertion-ordered dict, scanned whole for ``since``."""

    def __init__(self, size: int) -> None:
        self.keys: OrderedDict = OrderedDict()
        self.size = size

    def add(self, key, at: int = 0) -> bool:
        if key in self.keys:
            return False
        self.keys[key] = at
        if len(self.keys) > self.size:
            self.keys.popitem(last=False)
        return True

    def since(self, at: int) -> list:
        return [[list(key) if isinstance(key, tuple) else key, stamp] for key, stamp in self.keys.items() if stamp >= at]


def canonical(entries: list) -> list:
    return sorted((repr(key), stamp) for key, stamp in entries)


def test_it_answers_as_the_plain_scan_with_late_repeated_and_forgotten_keys():
    rng = random.Random(15)
    for size in (1, 3, 50):
        seen, plain = _Seen(size), Plain(size)
        now = 1_000_000
        for step in range(3000):
            now += rng.choice((0, 1, 7, 250))
            kind = rng.random()
            if kind < 0.6:
                key, at = ("post", f"p{step}"), now
            elif kind < 0.8:  # a catch-up: an older event arriving late, or one seen already
                back = rng.randrange(step + 1)
                key, at = ("post", f"p{back}"), now - rng.randrange(20_000)
            else:
                key, at = ("reaction", f"p{rng.randrange(step + 1)}", "u", "+1", now), now - rng.randrange(5_000)
            assert seen.add(key, at) == plain.add(key, at), (size, step)
            if step % 37 == 0:
                at = now - rng.choice((0, 500, 10_000, 60_000))
                assert canonical(seen.since(at)) == canonical(plain.since(at)), (size, step)
        assert canonical(seen.since(0)) == canonical(plain.since(0))
        assert len(seen._by_stamp) <= 2 * size + 1  # forgotten keys do not pile up


def test_a_key_forgotten_and_seen_again_is_listed_once_with_its_new_stamp():
    seen = _Seen(2)
    assert seen.add("a", 10) and seen.add("b", 20) and seen.add("c", 30)  # "a" forgotten
    assert seen.add("a", 10)  # new again, same stamp as before
    assert canonical(seen.since(0)) == canonical([["c", 30], ["a", 10]])
    assert not seen.add("a", 99)
    assert seen.since(11) == [["c", 30]]
