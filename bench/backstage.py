"""The backstage's latency with 10,000 incidents in the store: the incident list page and the REST API.

python -m bench.backstage [--public 8000] [--shared 1000] [--hidden 1000] [--rounds 30]

The world is bench/list.py's (team acme in the sandbox, real channels, a SQLite store): ``public``
public incidents, ``shared`` private ones dave is in, ``hidden`` private ones he is not in. The real
bot (CommandCenter) serves the backstage on loopback; each sample is one HTTP request as a browser
or a script makes it, timed to the last byte of the answer, with the bot's REST calls to Mattermost
counted from the sandbox's recording.

Measured, ``rounds`` times each, for dave (not an admin) and alice (a system admin):

- the incident list page ``GET /backstage/incidents`` signed in (session cookie). When that page is
  not served (it comes with the incidents slice; a 404 here), the backstage's home page
  ``GET /backstage/`` is measured instead and ``page_measured=home`` says so;
- ``GET /api/v1/incidents`` (first page and page 50, 25 per page) with a personal API token, and
  with ``?team=`` given (a script that knows its team saves the bot asking which teams it shares);
- ``GET /api/v1/incidents/{id}`` of a private incident dave is in (the freshness check of
  membership is one REST call; the channel name is cached).

Ends with key=value lines per measurement: p50/p99 in ms, the REST calls of the median sample
(``rest_calls_<key>``) and the most any sample made (``_max``: the samples that refreshed the
channel names for the rows' ~links, kept 60 s by services/history.py, or a user's name).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from backstage.app import COOKIE
from bench.harness import found, percentiles, quiet_logging
from bench.list import SEED, bot_calls, build_world, world_arguments
from bot import CommandCenter
from sandbox import Sandbox, SandboxConfig
from settings import Settings

PAGE = "/backstage/incidents"
HOME = "/backstage/"


async def sample(sandbox: Sandbox, http: aiohttp.ClientSession, url: str, headers: dict[str, str],
                 rounds: int) -> tuple[list[float], list[int]]:
    """Latency (ms) and the bot's REST calls of ``rounds`` GETs of ``url``."""
    samples, calls = [], []
    for _ in range(rounds):
        sandbox.clear_recording()
        started = time.perf_counter()
        async with http.get(url, headers=headers, allow_redirects=False) as response:
            await response.read()
            status = response.status
        samples.append((time.perf_counter() - started) * 1000)
        calls.append(bot_calls(sandbox))
        if status != 200:
            raise RuntimeError(f"GET {url} answered {status}")
    sandbox.clear_recording()
    return samples, calls


async def main(args: argparse.Namespace) -> None:
    quiet_logging()
    results: dict[str, tuple[list[float], list[int]]] = {}
    with tempfile.TemporaryDirectory(prefix="cc-bench-backstage-") as data_dir:
        async with Sandbox(SEED, config=SandboxConfig(record=True)) as sandbox:
            settings = Settings(mattermost_url=sandbox.url, bot_token=sandbox.token_of("incident"),
                                listen_host="127.0.0.1", listen_port=0, data_dir=Path(data_dir),
                                log_level="WARNING", request_timeout=30.0)
            started = time.perf_counter()
            visible = await build_world(sandbox, settings.effective_database_url, args.public, args.shared,
                                        args.hidden)
            total = args.public + args.shared + args.hidden
            print(f"world: {total} incidents ({args.public} public, {args.shared} private with dave, "
                  f"{args.hidden} private without), {visible} visible to dave; built in "
                  f"{time.perf_counter() - started:.1f} s")
            app = CommandCenter(settings)
            await app.start()
            try:
                await app.wait_connected()
                auth = found(app.web_auth, "web auth (is the bot started?)")
                base = app.callback_base_url
                team_id = found(sandbox.team("acme"), "team acme")["id"]
                people = {"dave": sandbox.user_id("dave"), "alice": sandbox.user_id("alice")}
                async with aiohttp.ClientSession() as http:
                    cookies, tokens = {}, {}
                    for name, user_id in people.items():
                        cookies[name] = {"Cookie": f"{COOKIE}={auth.cookie_value((await auth.open_session(user_id)).secret)}"}
                        tokens[name] = {"Authorization": f"Bearer {(await auth.create_token(user_id, 'bench')).secret}"}
                    async with http.get(base + PAGE, headers=cookies["dave"], allow_redirects=False) as response:
                        page = PAGE if response.status == 200 else HOME
                    # Warm-up: connections, the directory's member lists (bench/list.py), names.
                    await sample(sandbox, http, base + "/api/v1/incidents", tokens["dave"], 3)
                    await found(app.directory, "directory").preloaded.wait()
                    _, listed = await _json(http, base + "/api/v1/incidents?per_page=100", tokens["dave"])
                    private = next(i["id"] for i in listed["items"] if not i["public"])
                    plan = [("page_dave", base + page, cookies["dave"]),
                            ("page_alice", base + page, cookies["alice"]),
                            ("api_list_dave", base + "/api/v1/incidents", tokens["dave"]),
                            ("api_list_page50_dave", base + "/api/v1/incidents?page=50", tokens["dave"]),
                            ("api_list_team_dave", base + f"/api/v1/incidents?team={team_id}", tokens["dave"]),
                            ("api_list_alice", base + "/api/v1/incidents", tokens["alice"]),
                            ("api_incident_dave", base + f"/api/v1/incidents/{private}", tokens["dave"])]
                    for key, url, headers in plan:
                        await sample(sandbox, http, url, headers, 2)  # this URL's own caches
                        results[key] = await sample(sandbox, http, url, headers, args.rounds)
                        p50, p99 = percentiles(results[key][0])
                        print(f"{key:>22}: p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   REST calls "
                              f"{min(results[key][1])}-{max(results[key][1])}   ({url[len(base):]})")
            finally:
                await app.stop()
    print(f"incidents={total} visible_to_dave={visible} page_measured={'incidents' if page == PAGE else 'home'} "
          f"rounds={args.rounds}")
    print(" ".join(f"{key}_p50_ms={percentiles(s)[0]:.1f} {key}_p99_ms={percentiles(s)[1]:.1f} "
                   f"rest_calls_{key}={statistics.median_low(c)} rest_calls_{key}_max={max(c)}"
                   for key, (s, c) in results.items()))


async def _json(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> tuple[int, dict]:
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json()


def parse_args() -> argparse.Namespace:
    return world_arguments(__doc__.splitlines()[0], public=8000).parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
