"""Fuzzing the bot through Mattermost: random slash-command text and dialog submissions (Hypothesis).

For every example: the bot answers Mattermost's callback with 200 (never a 5xx or a timeout), no
text shown to the person contains a traceback or the "something went wrong inside" message of an
unexpected exception, and input the bot rejects changes nothing -- the store (incidents with their
versions, playbooks) and the sandbox (channels, members, posts) are compared before and after.

python -m bench.fuzz [--examples 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

SUBCOMMANDS = ("", "check", "uncheck", "stage", "step", "step add", "step remove", "step rename", "step move",
               "assign", "commander", "run", "end", "restart", "list", "help", "info", "start", "announce",
               "CHECK", "Stage", "playbook", "history")
TOKENS = ("1", "2", "1.1", "2.3", "3.9", "0", "0.0", "-1", "1.-1", "99", "9" * 30, "1.", ".1", "1.1.1", "S.N",
          "@alice", "@bob", "@nobody", "@all", "@channel", "@here", "alice", "~town-square", "~leadership",
          "~nope", "none", "next", "prev", "previous", "--post", '"', "'", "`", "```", "**", "\n", "\t", "<!here>",
          "<script>", "../", "%s", "{}", "[x](http://x)", "x" * 300, "é", "🚨", "\u202e", "\x00", "NaN")
# Replies that mean the input was accepted although they are not empty.
ACCEPTED_PREFIXES = ("Announced in",)
UNEXPECTED = ("Traceback", 'File "', "Something went wrong inside Command Center")

command_args = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(TOKENS) | st.text(max_size=8), max_size=5).map(" ".join),
)
commands = st.tuples(st.sampled_from(SUBCOMMANDS), command_args).map(lambda parts: f"/incident {parts[0]} {parts[1]}")
values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=80), st.lists(st.text(max_size=5), max_size=3),
                   st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
                   st.sampled_from(["", " ", "none", "x" * 26, "@alice", "x" * 2000]))


def submissions(keys: tuple[str, ...], good: dict) -> st.SearchStrategy[dict]:
    """Dialog submissions: the dialog's own fields and strangers, with good or hostile values."""
    good_values = st.sampled_from([v for v in good.values() if v]) if any(good.values()) else st.nothing()
    return st.dictionaries(st.sampled_from(keys + ("extra", "")), values | good_values, max_size=len(keys) + 1)


@dataclass
class FuzzReport:
    """How many examples ran and what went wrong."""

    commands: int = 0
    dialogs: int = 0
    rejected: int = 0
    accepted: int = 0
    problems: list[str] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        return (f"commands={self.commands} dialogs={self.dialogs} rejected={self.rejected} accepted={self.accepted} "
                f"problems={len(self.problems)}")


class Fuzzer:
    """Runs examples against a sandbox and a started bot; the checks are the same in CI and the benchmark."""

    def __init__(self, sandbox, bot, user: str, playbook_id: str, team: str = "acme") -> None:
        self.sb = sandbox
        self.bot = bot
        self.user = user
        self.playbook_id = playbook_id
        self.team_id = sandbox.team(team)["id"]
        self.report = FuzzReport()
        self.incident_channel = ""

    async def prepare(self) -> None:
        """An incident to work in, so incident commands reach real state."""
        person = self.sb.user(self.user)
        result = await person.command("town-square", "/incident start Fuzz target")
        outcome = await person.submit_dialog({"playbook": self.playbook_id, "name": "Fuzz target", "description": ""})
        assert result.dialog is not None and outcome.closed, (result, outcome)
        page = await self.bot.store.list_incidents(self.team_id, is_admin=True, search="Fuzz target")
        self.incident_channel = page.items[0].channel_id

    async def state(self) -> str:
        """A digest of everything a rejected input must leave alone."""
        world = self.sb.world
        incidents = await self.bot.store.list_incidents(self.team_id, is_admin=True, per_page=100)
        playbooks = await self.bot.store.playbooks_for_user(self.team_id, self.sb.user_id(self.user), is_admin=True)
        snapshot = {
            "incidents": sorted((i.id, i.version, i.card_post_id or "") for i in incidents.items),
            "incident_total": incidents.total,
            "playbooks": sorted((p.id, p.model_dump_json()) for p in playbooks),
            "channels": sorted((c["id"], c["name"], c["display_name"], c["header"], c["purpose"], c["delete_at"])
                               for c in world.channels.values()),
            "members": sorted((cid, sorted(members)) for cid, members in world.channel_members.items()),
            "posts": sorted((p["id"], p["update_at"], p["delete_at"], p["is_pinned"]) for p in world.posts.values()),
        }
        return hashlib.sha256(json.dumps(snapshot, sort_keys=True, default=str).encode()).hexdigest()

    def _check_callbacks(self, since: int, what: str) -> None:
        for callback in self.sb.callbacks[since:]:
            if callback.status != 200:
                self.report.problems.append(f"{what}: the bot answered {callback.status} ({callback.error})")

    def _check_texts(self, texts: list[str], what: str) -> None:
        for text in texts:
            if any(marker in text for marker in UNEXPECTED):
                self.report.problems.append(f"{what}: shown {text[:300]!r}")

    async def command(self, text: str, where: str) -> None:
        """One slash command from the fuzz corpus."""
        self.report.commands += 1
        channel = self.incident_channel if where == "incident" else "town-square"
        before, callbacks = await self.state(), len(self.sb.callbacks)
        result = await self.sb.user(self.user).command(channel, text)
        what = f"{text!r} in {where}"
        self._check_callbacks(callbacks, what)
        if result.status != 200:
            self.report.problems.append(f"{what}: Mattermost answered {result.status} {result.error}")
        self._check_texts(result.ephemeral, what)
        reply = "\n".join(result.ephemeral)
        if reply and not reply.startswith(ACCEPTED_PREFIXES):
            self.report.rejected += 1
            self.report.kinds[text.split()[1] if len(text.split()) > 1 else ""] += 1
            if await self.state() != before:
                self.report.problems.append(f"{what}: rejected ({reply[:120]!r}) but the state changed")
        else:
            self.report.accepted += 1
        if self.sb.user(self.user).dialog is not None:
            await self.sb.user(self.user).cancel_dialog()

    async def dialog(self, kind: str, submission: dict) -> None:
        """Open a dialog the way a person does, then submit ``submission``."""
        self.report.dialogs += 1
        person = self.sb.user(self.user)
        if kind == "start":
            opened = await person.command("town-square", "/incident start")
        else:
            card = self._card()
            label = {"commander": "Change commander", "assign": "Assign"}[kind]
            button = next((a for row in card["props"]["attachments"] for a in row.get("actions", [])
                           if a["name"] == label), None)
            if button is None:  # earlier fuzzed commands ended the incident or emptied the stage
                self.report.dialogs -= 1
                return
            opened = await person.click(card["id"], button["id"])
        if person.dialog is None:
            self.report.problems.append(f"{kind}: no dialog opened ({opened})")
            return
        before, callbacks = await self.state(), len(self.sb.callbacks)
        outcome = await person.submit_dialog(submission)
        what = f"{kind} dialog {submission!r}"[:300]
        self._check_callbacks(callbacks, what)
        self._check_texts([outcome.error or ""] + [str(v) for v in (outcome.errors or {}).values()], what)
        if outcome.closed:
            self.report.accepted += 1
        else:
            self.report.rejected += 1
            self.report.kinds[f"{kind} dialog"] += 1
            if await self.state() != before:
                self.report.problems.append(f"{what}: rejected ({outcome.error or outcome.errors}) but the state changed")
            await person.cancel_dialog()

    def _card(self) -> dict:
        return next(p for p in self.sb.pinned(self.incident_channel)
                    if (p.get("props") or {}).get("command_center_card"))

    async def run(self, examples: int, seed: int | None = None) -> FuzzReport:
        """Hypothesis drives the examples from a worker thread; each runs on this event loop."""
        loop = asyncio.get_running_loop()
        await self.prepare()

        def on_loop(coroutine) -> None:
            asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=120)

        common = {"deadline": None, "database": None, "derandomize": seed is None,
                  "phases": (Phase.explicit, Phase.generate), "suppress_health_check": list(HealthCheck)}

        @settings(max_examples=examples, **common)
        @given(text=commands, where=st.sampled_from(["incident", "town-square"]))
        def fuzz_commands(text: str, where: str) -> None:
            on_loop(self.command(text, where))

        good = {"playbook": self.playbook_id, "name": "Fuzzed", "commander": self.sb.user_id(self.user),
                "assignee": "none"}

        @settings(max_examples=max(3, examples // 3), **common)
        @given(kind=st.sampled_from(["start", "commander", "assign"]),
               data=st.data())
        def fuzz_dialogs(kind: str, data) -> None:
            keys = {"start": ("playbook", "name", "description"), "commander": ("commander",),
                    "assign": ("assignee",)}[kind]
            on_loop(self.dialog(kind, data.draw(submissions(keys, good))))

        for test in (fuzz_commands, fuzz_dialogs):
            if seed is not None:
                test = hypothesis_seed(seed)(test)
            await asyncio.to_thread(test)
        return self.report


async def main(examples: int, seed: int) -> FuzzReport:
    from bench.harness import BOT_TOKEN, EDIT_TIME_LIMIT, world
    from bot import CommandCenter
    from domain.playbooks import StageDraft, StepDraft, new_playbook
    from sandbox import Sandbox, SandboxConfig
    from settings import Settings

    started = time.monotonic()
    async with Sandbox(world(3), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sandbox:
        with tempfile.TemporaryDirectory(prefix="cc-fuzz-") as data_dir:
            bot = CommandCenter(Settings(mattermost_url=sandbox.url, bot_token=BOT_TOKEN, listen_host="127.0.0.1",
                                         listen_port=0, data_dir=Path(data_dir), log_level="ERROR",
                                         request_timeout=5.0, telemetry_enabled=False))
            await bot.start()
            logging.getLogger().setLevel(logging.CRITICAL)
            try:
                await bot.wait_connected()
                people = [f"u{i:03d}" for i in range(3)]
                playbook = await bot.store.create_playbook(new_playbook(
                    team_id=sandbox.team("acme")["id"], title="Fuzz", created_by=sandbox.user_id("u001"),
                    now=int(time.time() * 1000), member_ids=[sandbox.user_id(p) for p in people],
                    stages=[StageDraft(title=t, steps=(StepDraft(title=f"{t} a"), StepDraft(title=f"{t} b")))
                            for t in ("Triage", "Fix")]))
                report = await Fuzzer(sandbox, bot, "u001", playbook.id).run(examples, seed)
            finally:
                await bot.stop()
    print(f"commands: {report.commands}, dialog submissions: {report.dialogs} in {time.monotonic() - started:.1f} s")
    print(f"rejected: {report.rejected} (by subcommand: {dict(report.kinds.most_common(10))}), "
          f"accepted: {report.accepted}")
    for problem in report.problems[:30]:
        print(f"PROBLEM {problem}")
    print(report.summary())
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000, help="slash commands to try (a third as many dialogs)")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed")
    args = parser.parse_args()
    asyncio.run(main(args.examples, args.seed))
