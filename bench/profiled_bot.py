"""``python bot.py`` with a switchable profiler, for ``bench.incident --profile``.

SIGUSR1 starts cProfile on the bot's event-loop thread (where the handlers, rendering, REST client and
WebSocket run); SIGUSR2 stops it and writes the statistics to the file named by BENCH_PROFILE_OUT. The
SQLite threads are not profiled (their CPU is ``bot_store_cpu_ms_per_start``).

python -m bench.profiled_bot   (with the bot's environment, as bench.harness.bot_process starts it)
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Timed by the thread's CPU clock: time spent waiting (epoll, the GIL held by SQLite's threads) is not counted.
_profiler = cProfile.Profile(time.thread_time)


def _start(_signum, _frame) -> None:
    _profiler.enable()


def _stop(_signum, _frame) -> None:
    _profiler.disable()
    _profiler.dump_stats(os.environ["BENCH_PROFILE_OUT"])


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
    sys.path.insert(0, str(ROOT))
    sys.argv = [str(ROOT / "bot.py")]
    runpy.run_path(str(ROOT / "bot.py"), run_name="__main__")
