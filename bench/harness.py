"""Shared pieces of the benchmarks: a generated sandbox world, the bot as a real process, percentiles."""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiohttp

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
BOT_TOKEN = "xoeg5dzc1pd7zri85ryzeg3gda"
# Benchmarks run with ServiceSettings.PostEditTimeLimit set (seconds), as tests and the demo do.
EDIT_TIME_LIMIT = 300


def found(value: T | None, what: str) -> T:
    """``value``, which a benchmark can count on (its world's team, a started bot's parts); stop if missing."""
    if value is None:
        raise RuntimeError(f"the benchmark found no {what}")
    return value


def world(users: int) -> dict:
    """A sandbox seed: team acme, ``users`` people (u000 is a system admin) and the bot in town-square."""
    names = [f"u{i:03d}" for i in range(users)]
    people = [{"username": name, "email": f"{name}@example.com",
               "roles": "system_user system_admin" if i == 0 else "system_user",
               "teams": [{"name": "acme", "roles": "team_user team_admin" if i == 0 else "team_user"}]}
              for i, name in enumerate(names)]
    bot = {"username": "incident", "email": "incident@example.com", "is_bot": True, "token": BOT_TOKEN,
           "teams": [{"name": "acme", "roles": "team_user team_admin"}]}
    return {"teams": [{"name": "acme", "display_name": "ACME"}], "users": people + [bot],
            "channels": [{"team": "acme", "name": "town-square", "display_name": "Town Square", "type": "O",
                          "members": names + ["incident"]}]}


@asynccontextmanager
async def bot_process(mattermost_url: str, *, log_level: str = "WARNING", profile_out: str | None = None,
                      settings: dict[str, str] | None = None):
    """Run ``python bot.py`` against ``mattermost_url``; yield (process, base_url) once it is connected.
    ``profile_out``: run it under bench/profiled_bot.py instead (SIGUSR1/SIGUSR2 start and stop cProfile,
    whose statistics go to that file). ``settings``: more CC_ variables (e.g. CC_EVENT_LOOP)."""
    with tempfile.TemporaryDirectory(prefix="cc-bench-") as data_dir:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
        env.update({"CC_MATTERMOST_URL": mattermost_url, "CC_BOT_TOKEN": BOT_TOKEN, "CC_LISTEN_HOST": "127.0.0.1",
                    "CC_LISTEN_PORT": str(port), "CC_DATA_DIR": data_dir, "CC_LOG_LEVEL": log_level,
                    **(settings or {})})
        command = [sys.executable, str(ROOT / "bot.py")]
        if profile_out is not None:
            env["BENCH_PROFILE_OUT"] = profile_out
            command = [sys.executable, str(ROOT / "bench" / "profiled_bot.py")]
        process = subprocess.Popen(command, env=env, cwd=data_dir,
                                   stdout=subprocess.DEVNULL, stderr=None)
        base_url = f"http://127.0.0.1:{port}"
        try:
            await _wait_healthy(base_url, process)
            yield process, base_url
        finally:
            stop_process(process)


def stop_process(process: subprocess.Popen) -> None:
    """Ask a benchmark's child process to stop; kill it if it has not within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _wait_healthy(base_url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the bot exited with code {process.returncode} during start-up")
            try:
                async with http.get(base_url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)  # a benchmark's start-up wait, not a test synchronisation
    raise RuntimeError("the bot did not become healthy in time")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def thread_cpu_seconds(pid: int) -> dict[int, tuple[str, float]]:
    """CPU time of each thread of a process (thread id -> (name, seconds)), from /proc: the scheduler's
    nanosecond count (``schedstat``) where the kernel keeps it, else user + system time in clock ticks
    (10 ms each, too coarse for a few hundred milliseconds)."""
    ticks = os.sysconf("SC_CLK_TCK")
    threads: dict[int, tuple[str, float]] = {}
    for entry in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (entry / "stat").read_text()
            try:
                seconds = int((entry / "schedstat").read_text().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):
                fields = raw.rsplit(")", 1)[1].split()
                seconds = (int(fields[11]) + int(fields[12])) / ticks
        except OSError:  # the thread ended meanwhile
            continue
        threads[int(entry.name)] = (raw[raw.index("(") + 1:raw.rindex(")")], seconds)
    return threads


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def quiet_logging() -> None:
    """Warnings only, and nothing from the libraries' and the in-process bot's chatty loggers."""
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("mattermostautodriver", "mattermostautodriver.websocket", "command_center", "httpx"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    if len(ordered) < 2:
        value = ordered[0] if ordered else 0.0
        return value, value
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return cuts[49], cuts[98]
