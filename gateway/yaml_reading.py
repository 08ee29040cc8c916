"""Reading YAML that people write (playbooks, alert routing rules) safely, with problems by line.

One composer for every file the bot reads: PyYAML's SafeLoader refusing aliases, deep nesting and
too many values before they cost anything, and giving up at an optional deadline. What it refuses
and every YAML error become :class:`Problem` lines, raised through the caller's own error type.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import yaml
from yaml.nodes import Node


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file: where, which field, what."""

    line: int
    where: str
    message: str

    def __str__(self) -> str:
        place = f"Line {self.line}" if self.line else "The file"
        return f"{place}, {self.where}: {self.message}" if self.where else f"{place}: {self.message}"


#: Builds the caller's error from the problems found (e.g. PlaybookFormatError).
Fail = Callable[[Sequence[Problem]], Exception]


class TooManyProblems(Exception):
    """Enough problems were found: stop looking."""


def line_of(node: Node | None) -> int:
    """The 1-based line a node starts on (0: the file as a whole)."""
    return node.start_mark.line + 1 if node is not None and node.start_mark is not None else 0


class Problems:
    """The problems found so far; at ``most`` of them, looking stops (TooManyProblems)."""

    def __init__(self, fail: Fail, most: int = 20) -> None:
        self.items: list[Problem] = []
        self.fail = fail
        self.most = most

    def add(self, node: Node | None, where: str, message: str) -> None:
        self.items.append(Problem(line_of(node), where, message))
        if len(self.items) >= self.most:
            raise TooManyProblems

    def raise_if_any(self) -> None:
        if self.items:
            raise self.fail(self.items)


class TooSlow(Exception):
    """The parse ran past its deadline."""


@dataclass(frozen=True)
class Deadline:
    """When a parse must give up, on ``clock`` (seconds; injectable for tests)."""

    at: float
    clock: Callable[[], float] = time.monotonic
    timeout_s: float = 5.0

    @classmethod
    def after(cls, timeout_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + timeout_s, clock, timeout_s)

    def check(self) -> None:
        if self.clock() > self.at:
            raise TooSlow


@dataclass(frozen=True)
class Bounds:
    """How much structure a file may have, and what to say when it has more."""

    max_nodes: int
    max_depth: int
    too_many: str  #: e.g. "the file has more than 20000 values"
    too_deep: str  #: e.g. "the YAML is nested too deeply for routing rules"


class _Refused(yaml.MarkedYAMLError):
    pass


class _Composer(yaml.SafeLoader):
    def __init__(self, stream: str, bounds: Bounds, deadline: Deadline | None) -> None:
        super().__init__(stream)
        self._bounds = bounds
        self._depth = 0
        self._nodes = 0
        self._deadline = deadline

    def fetch_more_tokens(self):
        if self._deadline is not None:
            self._deadline.check()
        super().fetch_more_tokens()

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _Refused(problem="anchors and aliases (*name) are not supported; write the values out",
                           problem_mark=self.peek_event().start_mark)
        self._nodes += 1
        if self._nodes > self._bounds.max_nodes:
            raise _Refused(problem=self._bounds.too_many, problem_mark=self.peek_event().start_mark)
        if self._deadline is not None:
            self._deadline.check()
        self._depth += 1
        try:
            if self._depth > self._bounds.max_depth:
                raise _Refused(problem=self._bounds.too_deep, problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _mark_line(error: yaml.MarkedYAMLError) -> int:
    mark = error.problem_mark or error.context_mark
    return mark.line + 1 if mark is not None else 0


def compose(text: str, bounds: Bounds, fail: Fail, *, deadline: Deadline | None = None,
            too_slow: Callable[[float], str] | None = None) -> Node | None:
    """The node tree of ``text`` (None when it is empty); ``fail([problem])`` raised for anything it
    refuses and for every YAML error, at its line."""
    def one(line: int, message: str) -> Exception:
        return fail([Problem(line, "", message)])

    composer = None
    try:
        composer = _Composer(text, bounds, deadline)
        return composer.get_single_node()
    except TooSlow:
        assert deadline is not None
        message = too_slow(deadline.timeout_s) if too_slow else f"reading it took more than {deadline.timeout_s:g} s."
        raise one(0, message) from None
    except _Refused as error:  # valid YAML, but not what the file may contain
        raise one(_mark_line(error), f"{error.problem}.") from None
    except yaml.MarkedYAMLError as error:
        what = " ".join(x for x in (error.context, error.problem) if x) or "not valid YAML"
        raise one(_mark_line(error), f"not valid YAML: {what}.") from None
    except yaml.reader.ReaderError as error:
        line = text[: max(0, error.position)].count("\n") + 1
        raise one(line, "the text contains a character YAML does not allow "
                        f"(code {error.character:#x}); remove it.") from None
    except yaml.YAMLError as error:
        raise one(0, f"not valid YAML: {error}.") from None
    finally:
        if composer is not None:
            composer.dispose()


__all__ = ["Bounds", "Deadline", "Fail", "Problem", "Problems", "TooManyProblems", "compose", "line_of"]
