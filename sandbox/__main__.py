"""Run the sandbox as a process: ``python -m sandbox --seed FILE --host 127.0.0.1 --port 8065``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from .app import Sandbox, SandboxConfig

DEMO_SEED = Path(__file__).parent / "seeds" / "demo.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sandbox", description="Mattermost-compatible sandbox server")
    p.add_argument("--seed", default=str(DEMO_SEED), help="seed file (.yaml/.json); default: the demo world")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8065)
    p.add_argument("--site-url", default=None, help="public base URL (default http://HOST:PORT)")
    p.add_argument("--integration-timeout", type=float, default=30.0)
    p.add_argument("--trigger-id-lifetime", type=float, default=3.0,
                   help="seconds a trigger id stays valid (default 3, the strictest supported server)")
    p.add_argument("--server-version", default=SandboxConfig.server_version)
    p.add_argument("--post-edit-time-limit", type=int, default=-1,
                   help="ServiceSettings.PostEditTimeLimit in seconds (-1 = unlimited, the server default)")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    cfg = SandboxConfig(host=args.host, port=args.port, site_url=args.site_url,
                        integration_timeout=args.integration_timeout,
                        trigger_id_lifetime=args.trigger_id_lifetime, server_version=args.server_version,
                        post_edit_time_limit=args.post_edit_time_limit)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Sandbox(args.seed, config=cfg) as sb:
        logging.getLogger("sandbox").info("sandbox listening on %s", sb.url)
        for user in sb.world.users.values():
            logging.getLogger("sandbox").info("  %-12s id=%s token=%s", user["username"], user["id"],
                                              sb.token_of(user["username"]))
        print(f"sandbox ready url={sb.url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
