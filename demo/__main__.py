"""Start the sandbox Mattermost and the real bot, act out a short session, print what people see."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import textwrap
from pathlib import Path

from bot import CommandCenter, configure_logging
from sandbox import Sandbox, SandboxConfig
from settings import Settings

SEED = Path(__file__).resolve().parents[1] / "sandbox" / "seeds" / "demo.yaml"


class Transcript:
    """Prints chat lines the way a reader of the channel would see them."""

    def __init__(self, max_lines: int) -> None:
        self.max_lines = max_lines

    def say(self, where: str, who: str, text: str, *, private: bool = False) -> None:
        lines = text.strip().splitlines() or [""]
        if len(lines) > self.max_lines:
            lines = lines[: self.max_lines] + [f"… ({len(lines) - self.max_lines} more lines)"]
        tag = " (only you can see this)" if private else ""
        print(f"[{where}] {who}{tag}: {lines[0]}")
        for line in lines[1:]:
            print(textwrap.indent(line, " " * (len(where) + 3)))

    def note(self, text: str) -> None:
        print(f"-- {text}")


async def act(transcript: Transcript, sandbox: Sandbox) -> None:
    alice = sandbox.user("alice")

    transcript.note("alice asks for help with the slash command in Town Square")
    transcript.say("town-square", "alice", "/incident help")
    result = await alice.command("town-square", "/incident help")
    for text in result.ephemeral:
        transcript.say("town-square", "incident", text, private=True)

    transcript.note("alice asks the bot directly")
    dm = await alice.dm_channel("incident")
    before = len(sandbox.posts(dm))
    transcript.say("@incident", "alice", "help")
    await alice.post(dm, "help")
    reply = await sandbox.wait_for(lambda: [p for p in sandbox.posts(dm)[before:]
                                            if p["user_id"] == sandbox.user_id("incident")], timeout=10)
    transcript.say("@incident", "incident", reply[0]["message"])


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--max-lines", type=int, default=12, help="lines shown of each long reply")
    parser.add_argument("--verbose", action="store_true", help="show the bot's log lines")
    args = parser.parse_args(argv)
    configure_logging("INFO" if args.verbose else "WARNING")
    transcript = Transcript(args.max_lines)
    with tempfile.TemporaryDirectory(prefix="command-center-demo-") as data_dir:
        async with Sandbox(SEED, config=SandboxConfig()) as sandbox:
            settings = Settings(mattermost_url=sandbox.url, bot_token=sandbox.token_of("incident"),
                                listen_host="127.0.0.1", listen_port=0, data_dir=Path(data_dir))
            app = CommandCenter(settings)
            await app.start()
            try:
                await app.wait_connected()
                transcript.note(f"sandbox Mattermost at {sandbox.url}; bot @incident connected, "
                                f"callbacks at {app.callback_base_url}")
                await act(transcript, sandbox)
            finally:
                await app.stop()
    transcript.note("demo finished")
    return 0


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(asyncio.run(main(sys.argv[1:])))
