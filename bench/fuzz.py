"""Fuzzing the bot through Mattermost: random slash-command text and dialog submissions (Hypothesis).

For every example: the bot answers Mattermost's callback with 200 (never a 5xx or a timeout), no
text shown to the person contains a traceback or the "something went wrong inside" message of an
unexpected exception, and input the bot rejects changes nothing -- the store (incidents with their
versions, playbooks) and the sandbox (channels, members, posts) are compared before and after.

With ``--yaml N`` it also imports N playbook YAML texts of random shapes (flow and block lists,
nesting, aliases, long texts, valid playbooks) and sizes (up to past every limit), through the
import dialog and as files sent by direct message, with a ``/incident help`` typed at the same
moment: each must be answered, and the slowest help answer is reported (``max_help_ms``) -- a
parse on the event loop would show there.

With ``--steps N`` it also gives a playbook's step N random commands (backticks, mentions, steps
that run steps in every spelling, other integrations' and dangerous built-ins' triggers, huge,
unicode), saved with ``/incident playbook edit … step command`` and, when saved, run in a new
incident by its Run button and by ``/incident run``. Invariants: a refused save changes nothing;
the "ran" post mentions nobody but the person who ran it; no step runs a step (no run recorded for
such a command, at most one run per request, the bot never asks Mattermost to run its own trigger);
nothing runs with more rights than the person's (the bot runs only /echo, /header and /purpose
through Mattermost, no membership changes, no bot post where that person is not a member).

python -m bench.fuzz [--examples 2000] [--seed 0] [--yaml 0] [--steps 0]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


YAML_SHAPES = ("flow", "block", "nested", "scalar", "aliases", "playbook")
# Sizes around every limit: the dialog's 3000 characters, the 256 KB file, and beyond.
YAML_SIZES = (0, 100, 2_999, 3_001, 50_000, 200_000, 262_000, 262_145, 300_000)


def yaml_text(shape: str, size: int, title: str) -> str:
    """About ``size`` characters of YAML of one shape; "playbook" is a valid one (if small enough)."""
    head = f"title: {title}\n"
    if shape == "flow":
        return head + "stages: [" + ", ".join(["a"] * max(1, size // 3)) + "]\n"
    if shape == "block":
        return head + "stages:\n" + "- a\n" * max(1, size // 4)
    if shape == "nested":
        depth = max(1, min(size // 2, 100_000))
        return head + "stages: " + "[" * depth + "]" * depth + "\n"
    if shape == "scalar":
        return head + "description: " + "x" * size + "\nstages: [{title: A}]\n"
    if shape == "aliases":
        levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)]
        return head + "\n".join(levels) + "\n" + "#" * size + "\n"
    steps = "".join(f"  - title: Step {n}\n    description: {'d' * 100}\n" for n in range(max(1, size // 140)))
    return head + "stages:\n- title: Only\n  steps:\n" + steps


STEP_PREFIXES = ("/incident ", "/INCIDENT ", "/incident run ", "/Incident RUN ", "/incident\u00a0run ",
                 "/incident  run ", "/incident\trun ", "/incident run\n", "/incident check ", "/incident stage next",
                 "/incident announce ~town-square ", "/incident commander ", "/incident end", "/echo ",
                 "/ECHO ", "/header ", "/purpose ", "/invite ", "/kick ", "/leave", "/msg ", "/join ~", "/custom ",
                 "/echo `", "/echo ```\n", "echo ", "", "/", "//incident run 1.1 ")
STEP_TOKENS = ("1.1", "1.2", "2.1", "@all", "@channel", "@here", "@u000", "@u002", "`", "``", "```", "\n", "\\@all",
               "&#64;all", "@al&#108;", "~town-square", "~off-topic", "run", "RUN", "1.1`", "` @all `", "é", "🚨",
               "\u202e", "\u200b", "\u00a0", "x" * 600, "<!channel>", "[x](http://x)", "**b**", "> q", "|")
step_commands = st.tuples(
    st.sampled_from(STEP_PREFIXES),
    st.lists(st.sampled_from(STEP_TOKENS) | st.text(max_size=6), max_size=6).map(" ".join),
).map(lambda parts: (parts[0] + parts[1])[:700])


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
    yaml: int = 0
    help_ms: list[float] = field(default_factory=list)
    steps: int = 0
    steps_saved: int = 0
    step_runs: int = 0

    def summary(self) -> str:
        line = (f"commands={self.commands} dialogs={self.dialogs} rejected={self.rejected} accepted={self.accepted} "
                f"problems={len(self.problems)}")
        if self.yaml:
            line += f" yaml={self.yaml} max_help_ms={max(self.help_ms, default=0):.0f}"
        if self.steps:
            line += f" step_commands={self.steps} saved={self.steps_saved} runs_recorded={self.step_runs}"
        return line


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

    async def state(self, ignore_channel: str = "") -> str:
        """A digest of everything a rejected input must leave alone (but the posts of ``ignore_channel``)."""
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
            "posts": sorted((p["id"], p["update_at"], p["delete_at"], p["is_pinned"]) for p in world.posts.values()
                            if p["channel_id"] != ignore_channel),
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

    async def yaml_import(self, shape: str, size: int, via: str) -> None:
        """Import one YAML text by dialog or direct-message file, typing /incident help meanwhile."""
        self.report.yaml += 1
        person = self.sb.user(self.user)
        text = yaml_text(shape, size, f"Fuzz YAML {self.report.yaml}")
        what = f"YAML {shape} of {len(text)} characters by {via}"
        # By direct message the conversation itself grows; everything else must stay as it was.
        dm = await person.dm_channel("incident") if via == "dm" else ""
        before, callbacks = await self.state(dm), len(self.sb.callbacks)
        if via == "dialog":
            opened = await person.command("town-square", "/incident playbook import")
            if person.dialog is None:
                self.report.problems.append(f"{what}: no dialog opened ({opened})")
                return
            imported, helped = await asyncio.gather(person.submit_dialog({"yaml": text}), self._timed_help())
            answers = [imported.error or ""] + [str(v) for v in (imported.errors or {}).values()]
            accepted = imported.closed
            if not accepted:
                await person.cancel_dialog()
        else:
            mark, bot_id = len(self.sb.posts(dm)), self.sb.user_id("incident")
            await person.post(dm, "", files=[("fuzz.yaml", text.encode())])
            helped = await self._timed_help()
            replies = await self.sb.wait_for(
                lambda: [p["message"] for p in self.sb.posts(dm)[mark:] if p["user_id"] == bot_id], timeout=30)
            answers, accepted = replies, replies[0].startswith(("Imported a new", "Updated the"))
        self._check_callbacks(callbacks, what)
        self._check_texts(answers, what)
        if not helped:
            self.report.problems.append(f"{what}: /incident help was not answered meanwhile")
        if accepted:
            self.report.accepted += 1
        else:
            self.report.rejected += 1
            self.report.kinds[f"yaml {shape}"] += 1
            if await self.state(dm) != before:
                self.report.problems.append(f"{what}: rejected ({answers[0][:120]!r}) but the state changed")

    async def step_command(self, command: str) -> None:
        """Save ``command`` as step 1.1 of the playbook; when saved, run it in a new incident (button, then
        typed) and check that it mentioned nobody, ran no step and did nothing the person could not."""
        from domain import step_commands as parsing
        from gateway.step_commands import BOT_MAY_RUN
        from sandbox.mention_text import mention_text
        from sandbox.state import MENTION_RE

        self.report.steps += 1
        person, number = self.sb.user(self.user), self.report.steps
        playbook = await self.bot.store.get_playbook(self.playbook_id)
        what = f"step command {command[:120]!r}"
        before, callbacks = await self.state(), len(self.sb.callbacks)
        saved = await person.command("town-square", f'/incident playbook edit "{playbook.title}" step command 1.1 '
                                                    f"{command}")
        self._check_callbacks(callbacks, what)
        self._check_texts(saved.ephemeral, what)
        if saved.status != 200:
            self.report.problems.append(f"{what}: Mattermost answered {saved.status} {saved.error}")
            return
        after = await self.bot.store.get_playbook(self.playbook_id)
        stored, trigger = after.stages[0].steps[0].command, self.bot.ctx.settings.command_trigger
        if after.version == playbook.version:
            self.report.rejected += 1
            self.report.kinds["step command"] += 1
            if await self.state() != before:
                self.report.problems.append(f"{what}: refused ({saved.ephemeral[:1]}) but the state changed")
            return
        self.report.steps_saved += 1
        if parsing.runs_a_step(stored, trigger):
            self.report.problems.append(f"{what}: saved although it runs a step ({stored!r})")
        name = f"Fuzz step {number}"
        opened = await person.command("town-square", f"/incident start {name}")
        started = await person.submit_dialog({"playbook": self.playbook_id, "name": name, "description": ""})
        if opened.dialog is None or not started.closed:
            self.report.problems.append(f"{what}: could not start an incident ({started})")
            return
        incident = next(i for i in (await self.bot.store.list_incidents(self.team_id, is_admin=True, search=name,
                                                                         per_page=5)).items if i.name == name)
        world, bot_token = self.sb.world, self.sb.token_of("incident")
        members_before = {cid: sorted(m) for cid, m in world.channel_members.items() if cid != incident.channel_id}
        posts_before, calls_before = {p_id for p_id in world.posts}, len(self.sb.recording)
        callbacks = len(self.sb.callbacks)
        card = self._card(incident.channel_id)
        run = next((a["id"] for row in card["props"]["attachments"] for a in row.get("actions", [])
                    if a["name"] == "Run"), None)
        if run is None:
            self.report.problems.append(f"{what}: no Run button on the card")
            return
        clicked = await person.click(card["id"], run)
        typed = await person.command(incident.channel_id, "/incident run 1.1")
        self._check_callbacks(callbacks, what)
        self._check_texts(clicked.ephemeral + typed.ephemeral, what)
        runs = [e for e in await self.bot.store.timeline(incident.id) if e.kind.value == "step_run"]
        self.report.step_runs += len(runs)
        if len(runs) > 2:
            self.report.problems.append(f"{what}: {len(runs)} runs recorded for two requests")
        if runs and parsing.runs_a_step(stored, trigger):
            self.report.problems.append(f"{what}: a step that runs a step was run")
        executed = [json.loads(e.body or b"{}").get("command", "") for e in self.sb.recording[calls_before:]
                    if e.path == "/api/v4/commands/execute" and (e.headers.get("Authorization") or "").endswith(bot_token)]
        for sent in executed:
            if parsing.parse(sent).trigger not in BOT_MAY_RUN:
                self.report.problems.append(f"{what}: the bot asked Mattermost to run {sent[:80]!r} with its rights")
        if {cid: sorted(m) for cid, m in world.channel_members.items() if cid != incident.channel_id} != members_before:
            self.report.problems.append(f"{what}: running it changed who is in a channel")
        bot_id, me = self.sb.user_id("incident"), self.sb.user_id(self.user)
        live = re.compile(MENTION_RE.pattern, re.IGNORECASE)
        echoed = parsing.parse(stored).text if parsing.parse(stored).trigger == "echo" else None
        for post_id in set(world.posts) - posts_before:
            post = world.posts[post_id]
            if post["user_id"] != bot_id or post.get("type") or (post.get("props") or {}).get("command_center_card"):
                continue  # the card (redrawn after a run) is checked by the card's own tests
            if me not in world.channel_members.get(post["channel_id"], set()):
                self.report.problems.append(f"{what}: the bot posted where {self.user} is not a member")
            if " ran 1.1 " in post["message"]:
                mentioned = {m.group(1).lower().rstrip(".-_") for m in live.finditer(mention_text(post["message"]))}
                if mentioned - {self.user}:
                    self.report.problems.append(f"{what}: the ran post mentions {sorted(mentioned)}")
            elif echoed is not None and post["message"] != echoed and post["channel_id"] == incident.channel_id \
                    and not post["message"].startswith("@"):
                self.report.problems.append(f"{what}: /echo posted {post['message'][:80]!r}")
        self.report.accepted += 1

    async def _timed_help(self) -> bool:
        started = time.perf_counter()
        result = await self.sb.user(self.user).command("town-square", "/incident help")
        self.report.help_ms.append((time.perf_counter() - started) * 1000)
        return result.status == 200 and bool(result.response and result.response.get("text"))

    def _card(self, channel_id: str = "") -> dict:
        return next(p for p in self.sb.pinned(channel_id or self.incident_channel)
                    if (p.get("props") or {}).get("command_center_card"))

    async def run(self, examples: int, seed: int | None = None, yaml_examples: int = 0,
                  step_examples: int = 0) -> FuzzReport:
        """Hypothesis drives the examples from a worker thread; each runs on this event loop."""
        loop = asyncio.get_running_loop()
        await self.prepare()

        def on_loop(coroutine) -> None:
            asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=120)

        common: dict[str, Any] = {"deadline": None, "database": None, "derandomize": seed is None,
                  "phases": (Phase.explicit, Phase.generate), "suppress_health_check": list(HealthCheck)}

        @settings(max_examples=max(1, examples), **common)
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

        @settings(max_examples=max(1, yaml_examples), **common)
        @given(shape=st.sampled_from(YAML_SHAPES), size=st.sampled_from(YAML_SIZES) | st.integers(0, 300_000),
               via=st.sampled_from(["dialog", "dm"]))
        def fuzz_yaml(shape: str, size: int, via: str) -> None:
            on_loop(self.yaml_import(shape, size, via))

        @settings(max_examples=max(1, step_examples), **common)
        @given(command=step_commands)
        def fuzz_steps(command: str) -> None:
            on_loop(self.step_command(command))

        tests = [fuzz_commands, fuzz_dialogs] if examples else []
        for test in tests + ([fuzz_yaml] if yaml_examples else []) + ([fuzz_steps] if step_examples else []):
            if seed is not None:
                test = hypothesis_seed(seed)(test)
            await asyncio.to_thread(test)
        return self.report


async def main(examples: int, seed: int, yaml_examples: int = 0, step_examples: int = 0) -> FuzzReport:
    from bench.harness import BOT_TOKEN, EDIT_TIME_LIMIT, found, world
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
                    team_id=found(sandbox.team("acme"), "team acme")["id"], title="Fuzz", created_by=sandbox.user_id("u001"),
                    now=int(time.time() * 1000), member_ids=[sandbox.user_id(p) for p in people],
                    stages=[StageDraft(title=t, steps=(StepDraft(title=f"{t} a"), StepDraft(title=f"{t} b")))
                            for t in ("Triage", "Fix")]))
                report = await Fuzzer(sandbox, bot, "u001", playbook.id).run(examples, seed, yaml_examples, step_examples)
            finally:
                await bot.stop()
    print(f"commands: {report.commands}, dialog submissions: {report.dialogs}, YAML imports: {report.yaml}, "
          f"step commands: {report.steps} ({report.steps_saved} saved, {report.step_runs} runs recorded) "
          f"in {time.monotonic() - started:.1f} s")
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
    parser.add_argument("--yaml", type=int, default=0, help="playbook YAML imports to try (sizes past every limit)")
    parser.add_argument("--steps", type=int, default=0, help="random step commands to save and run")
    args = parser.parse_args()
    asyncio.run(main(args.examples, args.seed, args.yaml, args.steps))
