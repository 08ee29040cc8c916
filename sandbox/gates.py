"""Gates: hold a matching REST request before or after the server handles it, until released.

For crash tests: a test holds, say, the bot's ``POST /api/v4/posts/{id}/pin`` *after* the pin took
effect, waits until the gate is reached, kills the bot process, then releases the gate.  Nothing
polls: the held request awaits an event.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field


@dataclass
class Gate:
    """One armed gate; ``reached`` is set when a request arrives at it."""

    method: str
    path: re.Pattern[str]
    after: bool
    token: str | None
    times: int
    skip: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    hits: int = 0

    def matches(self, method: str, path: str, token: str, after: bool) -> bool:
        return (self.times > 0 and after == self.after and method == self.method and bool(self.path.search(path))
                and (self.token is None or token == self.token))

    def release(self) -> None:
        self.released.set()


class Gates:
    """The sandbox's armed gates (``sb.gates``)."""

    def __init__(self) -> None:
        self._gates: list[Gate] = []

    def hold(self, method: str, path_regex: str, *, after: bool = False, token: str | None = None,
             times: int = 1, skip: int = 0) -> Gate:
        """Arm a gate for the next ``times`` requests matching (after letting ``skip`` pass); ``after``
        holds the response of a request that was already handled (its effect happened; the caller
        does not hear).  A request held *before* handling is dropped if its client went away."""
        gate = Gate(method.upper(), re.compile(path_regex), after, token, times, skip)
        self._gates.append(gate)
        return gate

    async def pass_through(self, method: str, path: str, token: str, *, after: bool) -> None:
        for gate in self._gates:
            if gate.matches(method, path, token, after):
                if gate.skip > 0:
                    gate.skip -= 1
                    continue
                gate.times -= 1
                gate.hits += 1
                gate.reached.set()
                await gate.released.wait()

    def release_all(self) -> None:
        for gate in self._gates:
            gate.release()
        self._gates.clear()
