"""Limited markdown does work in proportion to its input, counted, not timed (issue 14; slice "timed").

Openers without closers once made the scan quadratic (20,000 characters of them took seconds). What
keeps it linear is pinned here without a clock:

- every search for a closing mark is bounded: no run of *any* character in the inline scanner is
  unbounded, and a mark further away than the bound is not found (so a scan from each opener looks
  at most that far);
- the Python side hands the scanner, the escaper and the recursion work that grows with the input,
  not with its square: the same hostile unit at length n and 2n costs about twice as much.

The wall-clock figure lives in ``python -m bench.markdown`` (key=value lines).
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse
from collections import Counter

import pytest

import gateway.messages as messages
from gateway.messages import limited_markdown

HOSTILE_UNITS = ("**a ", "_a ", "~~a ", "*a ", "[", "`a ``b ", "*_~~[`", "\\", "![a](", "<a:", "__a ", "a**")
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)


def _repeats(items):
    """Every repeat in a parsed pattern as (min, max, body items), nested ones included."""
    for op, av in items:
        if op in _REPEATS:
            low, high, body = av
            yield low, high, list(body)
            yield from _repeats(body)
        elif op == sre.SUBPATTERN:
            yield from _repeats(av[-1])
        elif op == sre.BRANCH:
            for branch in av[1]:
                yield from _repeats(branch)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            yield from _repeats(av[1])
        elif op == sre.ATOMIC_GROUP:
            yield from _repeats(av)


def _is_run_of_any_character(items) -> bool:
    """The body of ``.{m,n}`` (possibly in a group): what a search for a closing mark runs over."""
    while len(items) == 1 and items[0][0] == sre.SUBPATTERN:
        items = list(items[0][1][-1])
    return len(items) == 1 and items[0][0] == sre.ANY


def test_every_search_for_a_closing_mark_is_bounded():
    """A run of any character (how the scanner looks for a closing mark) has a finite bound."""
    parsed = sre_parse.parse(messages._INLINE.pattern, messages._INLINE.flags)
    runs = [(low, high) for low, high, body in _repeats(parsed) if _is_run_of_any_character(body)]
    assert runs, "the scanner has no run of any character any more: update this test"
    unbounded = [run for run in runs if run[1] == sre.MAXREPEAT]
    assert not unbounded, f"{len(unbounded)} search(es) for a closing mark may scan to the end of the text"
    assert max(high for _, high in runs) <= messages._CODE_SPAN_MAX


@pytest.mark.parametrize(("mark", "bound"), [("**", messages._SPAN_MAX), ("~~", messages._SPAN_MAX),
                                             ("*", messages._SPAN_MAX), ("`", messages._CODE_SPAN_MAX)])
def test_a_closing_mark_further_than_the_bound_is_not_looked_for(mark, bound):
    inside = "a" * bound
    assert limited_markdown.__wrapped__(f"{mark}{inside}{mark}") == f"{mark}{inside}{mark}"
    too_far = limited_markdown.__wrapped__(f"{mark}{inside}a{mark}")
    assert not too_far.startswith(mark), too_far[:20]  # escaped as text: the scan stopped at the bound


class _CountingScanner:
    """Stands in for the inline scanner and counts the characters handed to it."""

    def __init__(self, pattern: re.Pattern[str], work: Counter[str]) -> None:
        self.pattern = pattern
        self.work = work

    def finditer(self, text: str):
        self.work["scanned"] += len(text)
        self.work["scans"] += 1
        for match in self.pattern.finditer(text):
            self.work["matches"] += 1
            yield match


def _work_for(text: str, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    work: Counter[str] = Counter()
    parse, escape = messages._parse_inline, messages._escape_text

    def counted_parse(text: str, *args, **kwargs):
        work["parses"] += 1
        return parse(text, *args, **kwargs)

    def counted_escape(text: str) -> str:
        work["escaped"] += len(text)
        return escape(text)

    with monkeypatch.context() as patch:
        patch.setattr(messages, "_INLINE", _CountingScanner(messages._INLINE, work))
        patch.setattr(messages, "_parse_inline", counted_parse)
        patch.setattr(messages, "_escape_text", counted_escape)
        limited_markdown.__wrapped__(text)
        limited_markdown.__wrapped__(text, one_line=True, limit=60)
    return work


@pytest.mark.parametrize("unit", HOSTILE_UNITS)
def test_hostile_inputs_cost_work_in_proportion_to_their_length(unit, monkeypatch):
    n = 8_000  # n and 2n both stay under the 20,000-character cut, so both are processed whole
    small = _work_for((unit * n)[:n], monkeypatch)
    large = _work_for((unit * 2 * n)[:2 * n], monkeypatch)
    assert small["scanned"] >= n  # the counters see the work
    for kind in ("scanned", "scans", "matches", "parses", "escaped"):
        assert large[kind] <= 2 * small[kind] + 64, (unit, kind, small[kind], large[kind])


def test_text_beyond_the_source_bound_is_not_processed(monkeypatch):
    bound = messages._SOURCE_MAX
    at_bound = _work_for("**a " * (bound // 4), monkeypatch)
    far_beyond = _work_for("**a " * (bound // 2), monkeypatch)
    assert far_beyond == at_bound
    assert limited_markdown.__wrapped__("a" * (bound + 10)).endswith("…")
