"""What a module asked ``asyncio.sleep`` for, recorded instead of timed."""

from __future__ import annotations

import asyncio
import sys

import pytest


def record_sleeps(monkeypatch: pytest.MonkeyPatch, module: str) -> list[float]:
    """Every delay that code of ``module`` passes to ``asyncio.sleep`` from now on (others untouched)."""
    delays: list[float] = []
    real_sleep = asyncio.sleep

    def sleep(delay: float, *args, **kwargs):
        if sys._getframe(1).f_globals.get("__name__") == module:
            delays.append(delay)
        return real_sleep(delay, *args, **kwargs)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return delays
