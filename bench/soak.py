"""Soak under faults: many incidents worked through the sandbox while Mattermost misbehaves for the bot.

People start incidents (slash command + dialog), click Check/Uncheck on cards, type step, stage, end
and restart commands. Every answer a person gets is classified as *ok*, *already* (a no-op they
were told about) or *error* (a message shown to them). Meanwhile the sandbox injects 5xx, 429,
slow answers and connections dropped before or after processing into the bot's REST calls only
(the people are the observers). At the end, with faults paused, the store and the sandbox are
compared with what people were told:

- an incident exists (once) exactly when its start was acknowledged; its stage, status and step
  states are what the acknowledged actions made them; its pinned card shows that state;
- no duplicate posts (no pending_post_id twice), one opening post and one card per incident,
  no second or orphan channel, no start left half-done;
- no error message is empty or shows a traceback.

python -m bench.soak [--seconds 60] [--incidents 300] [--concurrency 8] [--seed 1] [--fault-rate 1.0] [--log FILE]
                     [--replicas 2] [--database sqlite|postgresql]

``--replicas N`` runs N bots on one database (a SQLite file, or ``--database postgresql``: a fresh
database on the server at ``CC_TEST_POSTGRES_URL``, or on a throw-away one, tests/pg.py) behind a loopback proxy that sends Mattermost's
callbacks to them in turn (bench/proxy.py), so a dialog opened by one is submitted to another and
two of them edit one card at once; halfway through, the leader is stopped and the others go on
(docs/replicas.md). The checks are the same, against the shared store.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import found
from gateway.cards import CardContext, incident_card

FAULT_MIX: tuple[tuple[str, float, dict[str, Any]], ...] = (  # kind, probability, extra arguments: roughly one bot request in six misbehaves
    ("error", 0.04, {}),
    ("error", 0.01, {"status": 503}),
    ("rate_limit", 0.02, {"retry_after": 0}),
    ("slow", 0.04, {"delay": 0.05}),
    ("drop_before", 0.025, {}),
    ("drop_after", 0.025, {}),
)
ALREADY_MARKERS = ("already", "nothing changed")


def add_faults(sandbox, users: tuple[str, ...] = ("incident",), scale: float = 1.0) -> None:
    """Switch the standard fault mix on for the given users' REST calls."""
    for kind, probability, extra in FAULT_MIX:
        sandbox.faults.add(kind, probability=min(1.0, probability * scale), users=users, **extra)


@dataclass
class Told:
    """What one person was told after one action."""

    op: str
    user: str
    verdict: str            # "ok" | "already" | "error"
    text: str = ""


@dataclass
class Model:
    """An incident as its people believe it is, from the answers they got."""

    name: str
    starter: str
    started: bool = False
    stage: int = 0
    stage_count: int = 0
    ongoing: bool = True
    steps: dict[str, bool] = field(default_factory=dict)        # step id -> done
    layout: list[list[str]] = field(default_factory=list)       # stage -> step ids
    added: list[tuple[int, str]] = field(default_factory=list)  # (stage, title) of acknowledged adds
    incident_id: str = ""
    channel_id: str = ""


@dataclass
class Report:
    """The soak's figures and every mismatch found."""

    operations: int = 0
    by_verdict: Counter = field(default_factory=Counter)
    errors_shown: Counter = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)
    incidents_started: int = 0
    incidents_refused: int = 0
    faults: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"ops={self.operations} ok={self.by_verdict['ok']} already={self.by_verdict['already']} "
                f"errors_shown={self.by_verdict['error']} incidents={self.incidents_started} "
                f"refused_starts={self.incidents_refused} faults={sum(self.faults.values())} "
                f"mismatches={len(self.mismatches)} seconds={self.seconds:.1f}")


def classify(status: int, texts: list[str], error: Any = None) -> tuple[str, str]:
    """An answer as the person reads it."""
    text = "\n".join(t for t in texts if t)
    if status != 200 or error:
        return "error", text or f"HTTP {status}: {error}"
    if not text:
        return "ok", ""
    if any(marker in text.lower() for marker in ALREADY_MARKERS):
        return "already", text
    return "error", text


class Soak:
    """Drives people through incidents and checks the outcome; used by the benchmark and the tests."""

    def __init__(self, sandbox, bot, people: list[str], playbook_id: str, *, seed: int = 1,
                 ops_per_incident: int = 8, team: str = "acme") -> None:
        self.sb = sandbox
        self.team = team
        self.bot = bot
        self.people = people
        self.playbook_id = playbook_id
        self.random = random.Random(seed)
        self.ops_per_incident = ops_per_incident
        self.report = Report()
        self.models: list[Model] = []
        self._names = iter(range(10**9))

    # Driving -------------------------------------------------------------------------------

    async def run(self, *, incidents: int, seconds: float, concurrency: int) -> Report:
        started = time.monotonic()
        deadline = started + seconds
        budget = iter(range(incidents))

        async def worker(number: int) -> None:
            rng = random.Random(self.random.random())
            while time.monotonic() < deadline and next(budget, None) is not None:
                await self.one_incident(self.people[number % len(self.people)], rng, deadline)

        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        with self.sb.faults.paused():
            await self.verify()
        self.report.faults = self.sb.faults.counts()
        self.report.seconds = time.monotonic() - started
        return self.report

    def _record(self, op: str, user: str, verdict: str, text: str) -> str:
        self.report.operations += 1
        self.report.by_verdict[verdict] += 1
        if verdict == "error":
            self.report.errors_shown[text.splitlines()[0][:100] if text else "(empty)"] += 1
            if not text.strip():
                self.report.mismatches.append(f"{op} by {user}: an error with no message")
            if "Traceback" in text or "Exception" in text:
                self.report.mismatches.append(f"{op} by {user}: internals shown: {text[:200]}")
        return verdict

    async def one_incident(self, user: str, rng: random.Random, deadline: float) -> None:
        model = Model(name=f"Soak {next(self._names)} {rng.choice(['db', 'api', 'cdn', 'auth'])} outage",
                      starter=user)
        self.models.append(model)
        if not await self.start(model):
            return
        for _ in range(self.ops_per_incident):
            if time.monotonic() >= deadline:
                break
            await self.random_op(model, rng)

    async def start(self, model: Model) -> bool:
        person = self.sb.user(model.starter)
        result = await person.command("town-square", f"/incident start {model.name}")
        if result.dialog is None:
            verdict, text = classify(result.status, result.ephemeral, result.error)
            self._record("start", model.starter, "error" if verdict == "ok" else verdict, text or "no dialog")
            self.report.incidents_refused += 1
            return False
        outcome = await person.submit_dialog({"playbook": self.playbook_id, "name": model.name,
                                              "description": "Soak test"})
        if not outcome.closed or outcome.error or outcome.errors:
            self._record("start", model.starter, "error", outcome.error or str(outcome.errors))
            self.report.incidents_refused += 1
            return False
        self._record("start", model.starter, "ok", "")
        model.started = True
        self.report.incidents_started += 1
        # The layout the person sees on the card; read from the store, which the card mirrors.
        incident = await self._stored(model)
        if incident is None:
            self.report.mismatches.append(f"{model.name}: acknowledged start but no incident stored")
            model.started = False
            return False
        model.incident_id, model.channel_id = incident.id, incident.channel_id
        model.layout = [[step.id for step in stage.steps] for stage in incident.stages]
        model.stage_count = len(incident.stages)
        model.steps = {step_id: False for stage in model.layout for step_id in stage}
        return True

    async def _stored(self, model: Model):
        found = [i for i in await self._all_incidents() if i.name == model.name]
        return found[0] if len(found) == 1 else None

    async def _all_incidents(self):
        team_id = self.sb.team(self.team)["id"]
        items, page = [], 0
        while True:
            chunk = await self.bot.store.list_incidents(team_id, is_admin=True, per_page=100, page=page)
            items.extend(chunk.items)
            if len(items) >= chunk.total or not chunk.items:
                return items
            page += 1

    async def random_op(self, model: Model, rng: random.Random) -> None:
        if not model.ongoing:
            await self.restart(model)
            return
        choice = rng.random()
        if choice < 0.40:
            await self.click_step(model, rng)
        elif choice < 0.60:
            await self.command_step(model, rng)
        elif choice < 0.78:
            await self.stage(model, rng)
        elif choice < 0.90:
            await self.add_step(model, rng)
        else:
            await self.end(model)

    async def _command(self, model: Model, op: str, text: str) -> tuple[str, str]:
        result = await self.sb.user(model.starter).command(model.channel_id, text)
        verdict, message = classify(result.status, result.ephemeral, result.error)
        self._record(op, model.starter, verdict, message)
        return verdict, message

    async def click_step(self, model: Model, rng: random.Random) -> None:
        card = self._card(model)
        rows = [a for a in (card or {}).get("props", {}).get("attachments", [])[2:]
                if any(b["name"] in ("Check", "Uncheck") for b in a.get("actions", []))]
        if card is None or not rows:
            await self.command_step(model, rng)
            return
        button = next(b for b in rng.choice(rows)["actions"] if b["name"] in ("Check", "Uncheck"))
        result = await self.sb.user(model.starter).click(card["id"], button["id"])
        verdict, text = classify(result.status, result.ephemeral, result.error)
        self._record("click", model.starter, verdict, text)
        if verdict == "ok":
            step_id = button["id"].removeprefix("uncheck").removeprefix("check")
            model.steps[step_id] = button["name"] == "Check"

    async def command_step(self, model: Model, rng: random.Random) -> None:
        steps = model.layout[model.stage]
        if not steps:
            await self.add_step(model, rng)
            return
        index = rng.randrange(len(steps))
        step_id = steps[index]
        done = not model.steps.get(step_id, False)
        verb = "check" if done else "uncheck"
        verdict, text = await self._command(model, verb, f"/incident {verb} {model.stage + 1}.{index + 1}")
        if verdict == "already":
            self.report.mismatches.append(f"{model.name}: {verb} {model.stage + 1}.{index + 1} answered "
                                          f"{text!r} although every earlier answer said otherwise")
        if verdict in ("ok", "already"):
            model.steps[step_id] = done

    async def stage(self, model: Model, rng: random.Random) -> None:
        forward = model.stage < model.stage_count - 1 and (model.stage == 0 or rng.random() < 0.7)
        verdict, _ = await self._command(model, "stage", f"/incident stage {'next' if forward else 'prev'}")
        if verdict == "ok":
            model.stage += 1 if forward else -1

    async def add_step(self, model: Model, rng: random.Random) -> None:
        title = f"Extra step {rng.randrange(10**6)}"
        verdict, _ = await self._command(model, "step add", f"/incident step add {title}")
        if verdict == "ok":
            model.added.append((model.stage, title))
            incident = await self.bot.store.get_incident(model.incident_id)
            new_id = next(s.id for s in incident.stages[model.stage].steps if s.title == title)
            model.layout[model.stage].append(new_id)
            model.steps[new_id] = False

    async def _confirmed(self, model: Model, op: str) -> str:
        person = self.sb.user(model.starter)
        result = await person.command(model.channel_id, f"/incident {op}")
        if result.dialog is None:
            verdict, text = classify(result.status, result.ephemeral, result.error)
            return self._record(op, model.starter, "error" if verdict == "ok" else verdict, text or "no dialog")
        outcome = await person.submit_dialog({})
        if not outcome.closed or outcome.error or outcome.errors:
            return self._record(op, model.starter, "error", outcome.error or str(outcome.errors))
        return self._record(op, model.starter, "ok", "")

    async def end(self, model: Model) -> None:
        if await self._confirmed(model, "end") == "ok":
            model.ongoing = False

    async def restart(self, model: Model) -> None:
        if await self._confirmed(model, "restart") == "ok":
            model.ongoing = True

    def _card(self, model: Model) -> dict | None:
        cards = [p for p in self.sb.pinned(model.channel_id)
                 if (p.get("props") or {}).get("command_center_card") == model.incident_id]
        return cards[0] if len(cards) == 1 else None

    # Verifying -----------------------------------------------------------------------------

    async def verify(self) -> None:
        """Compare the store and the sandbox with what people were told (faults paused)."""
        mismatches = self.report.mismatches
        stored = await self._all_incidents()
        by_name = Counter(i.name for i in stored)
        bot_id = self.sb.user_id("incident")
        for model in self.models:
            count = by_name.get(model.name, 0)
            if model.started and count != 1:
                mismatches.append(f"{model.name}: acknowledged, but {count} incidents stored")
            if not model.started and count:
                mismatches.append(f"{model.name}: refused, yet {count} incident(s) stored")
            live = [c for c in self.sb.world.channels.values()
                    if c["display_name"] == model.name and not c["delete_at"]]
            if len(live) != (1 if model.started else 0):
                mismatches.append(f"{model.name}: {len(live)} live channel(s) for a start that was "
                                  f"{'acknowledged' if model.started else 'refused'}")
            if model.started and count == 1:
                await self._verify_incident(model, bot_id)
        incident_channels = {i.channel_id for i in stored}
        for channel in self.sb.world.channels.values():
            if (channel["creator_id"] == bot_id and channel["type"] in ("O", "P") and not channel["delete_at"]
                    and channel["id"] not in incident_channels):
                mismatches.append(f"orphan channel ~{channel['name']}")
        pending = Counter(p["pending_post_id"] for p in self.sb.world.posts.values()
                          if p["user_id"] == bot_id and p["pending_post_id"])
        mismatches.extend(f"post made {n} times (pending_post_id {key})" for key, n in pending.items() if n > 1)
        journals = await self.bot.store.settings_with_prefix("start:")
        mismatches.extend(f"start left half-done: {key}" for key in journals)

    async def _verify_incident(self, model: Model, bot_id: str) -> None:
        mismatches = self.report.mismatches
        incident = await self.bot.store.get_incident(model.incident_id)
        if incident is None:
            mismatches.append(f"{model.name}: the incident was lost")
            return
        if incident.active_stage != model.stage:
            mismatches.append(f"{model.name}: stage {incident.active_stage + 1}, people were told {model.stage + 1}")
        if incident.is_ongoing != model.ongoing:
            mismatches.append(f"{model.name}: ongoing={incident.is_ongoing}, people were told {model.ongoing}")
        stored_steps = {step.id: step.done for stage in incident.stages for step in stage.steps}
        for step_id, done in model.steps.items():
            if stored_steps.get(step_id) != done:
                mismatches.append(f"{model.name}: step {step_id} done={stored_steps.get(step_id)}, told {done}")
        titles = Counter((number, step.title) for number, stage in enumerate(incident.stages) for step in stage.steps)
        for stage_title in set(model.added):
            if titles[stage_title] != model.added.count(stage_title):
                mismatches.append(f"{model.name}: step {stage_title[1]!r} stored {titles[stage_title]} times")
        extra = sum(titles.values()) - len(model.steps)
        if extra:
            mismatches.append(f"{model.name}: {extra} step(s) nobody was told were added")
        mine = [p for p in self.sb.posts(incident.channel_id) if p["user_id"] == bot_id]
        cards = [p for p in mine if (p.get("props") or {}).get("command_center_card") == incident.id]
        openings = [p for p in mine if p["message"].startswith("This incident has been started by")]
        if len(cards) != 1 or len(openings) != 1:
            mismatches.append(f"{model.name}: {len(cards)} cards and {len(openings)} opening posts")
            return
        if not cards[0]["is_pinned"] or cards[0]["id"] != incident.card_post_id:
            mismatches.append(f"{model.name}: the card is not the pinned, recorded one")

        # A card refresh that Mattermost refused is retried in the background: give it time.
        def card_shows_store() -> bool:
            post = self.sb.world.posts[incident.card_post_id]
            return _card_digest(post) == _card_digest(self._expected_card(incident))

        try:
            await self.sb.wait_for(card_shows_store, timeout=15.0)
        except TimeoutError:
            mismatches.append(f"{model.name}: the card does not show the stored state")

    def _expected_card(self, incident) -> dict:
        names = {u["id"]: u["username"] for u in self.sb.world.users.values()}
        context = CardContext(usernames=names, signer=self.bot.ctx.signer, action_url="", now_ms=0)
        return incident_card(incident, context)


def _card_digest(card: dict) -> tuple:
    """What a person reads on a card, minus the running duration."""
    attachments = card["props"]["attachments"]
    return (card["message"], tuple(a.get("text", "") for a in attachments[1:]),
            tuple(tuple(b["name"] for b in a.get("actions", [])) for a in attachments))


# The benchmark ------------------------------------------------------------------------------

async def main(seconds: float, incidents: int, concurrency: int, seed: int, scale: float,
               log_file: str | None = None, replicas: int = 1, database: str = "sqlite") -> Report:
    from bench.harness import BOT_TOKEN, EDIT_TIME_LIMIT, world
    from bench.proxy import ReplicaProxy
    from bot import CommandCenter
    from domain.playbooks import StageDraft, StepDraft, new_playbook
    from sandbox import Sandbox, SandboxConfig
    from settings import Settings

    people = [f"u{i:03d}" for i in range(max(concurrency, 2))]
    async with Sandbox(world(len(people)), config=SandboxConfig(fault_seed=seed, post_edit_time_limit=EDIT_TIME_LIMIT)) as sandbox:
        with tempfile.TemporaryDirectory(prefix="cc-soak-") as data_dir:
            proxy = ReplicaProxy(["http://127.0.0.1:1"] * replicas) if replicas > 1 else None
            public_url = await proxy.start() if proxy is not None else None
            database_url = None
            dropped = None
            if database == "postgresql":
                from tests import pg  # a fresh database on CC_TEST_POSTGRES_URL's server, or a throw-away server

                database_url = dropped = pg.fresh_database(migrated=False)
            elif replicas > 1:
                database_url = f"sqlite:///{Path(data_dir) / 'shared.db'}"
            bots = []
            for number in range(replicas):
                own_dir = Path(data_dir) / f"replica-{number}"
                bots.append(CommandCenter(Settings(
                    mattermost_url=sandbox.url, bot_token=BOT_TOKEN, listen_host="127.0.0.1", listen_port=0,
                    data_dir=own_dir, log_level="ERROR", request_timeout=5.0, telemetry_enabled=False,
                    database_url=database_url, public_url=public_url, replica_id=f"soak-{number}",
                    signing_secret="soak-replicas-share-one-signing-secret-0123456789",
                    lease_ms=2000)))
            for number, bot in enumerate(bots):
                await bot.start()
                if proxy is not None and bot.inbound is not None:
                    proxy.targets[number] = f"http://127.0.0.1:{bot.inbound.port}"
            bot = bots[-1]  # never stopped: the checks read the shared store through it
            # Retries and lost answers are expected here: log them only where asked to.
            if log_file:
                logging.basicConfig(level=logging.INFO, filename=log_file, filemode="w", force=True)
            else:
                logging.getLogger().setLevel(logging.CRITICAL)
            stopper: asyncio.Task | None = None
            stopped_after = -1
            try:
                await bots[0].wait_connected()
                playbook = await bot.store.create_playbook(new_playbook(
                    team_id=found(sandbox.team("acme"), "team acme")["id"], title="Soak",
                    created_by=sandbox.user_id(people[0]),
                    now=int(time.time() * 1000), member_ids=[sandbox.user_id(p) for p in people],
                    stages=[StageDraft(title=title, steps=tuple(StepDraft(title=f"{title} {n}") for n in range(3)))
                            for title in ("Triage", "Mitigation", "Resolution")]))
                add_faults(sandbox, scale=scale)
                soak = Soak(sandbox, bot, people, playbook.id, seed=seed)
                if len(bots) > 1:
                    async def stop_the_leader() -> None:
                        # Halfway through the starts (a benchmark may poll; a test may not).
                        while soak.report.incidents_started < incidents // 2 and time.monotonic() < give_up:  # noqa: ASYNC110
                            await asyncio.sleep(0.05)
                        nonlocal stopped_after
                        stopped_after = soak.report.incidents_started
                        await bots[0].stop()  # the proxy sends the rest to the others; one takes the lease
                    give_up = time.monotonic() + seconds / 2
                    stopper = asyncio.create_task(stop_the_leader())
                report = await soak.run(incidents=incidents, seconds=seconds, concurrency=concurrency)
            finally:
                if stopper is not None:
                    await stopper
                for each in bots[1:] if stopper is not None else bots:
                    await each.stop()
                if proxy is not None:
                    await proxy.stop()
                if dropped is not None:
                    pg.drop_database(dropped)
                    pg.stop_session_server()
    print(f"replicas={replicas} database={database}")
    if len(bots) > 1:
        leaders = [b.replica.id for b in bots[1:] if b.replica is not None and b.replica.stats.elections]
        print(f"leader_stopped_after_starts={stopped_after} new_leader={','.join(leaders) or 'none'}")
    if proxy is not None:
        print(f"served_per_replica={dict(proxy.served)} refused_by_stopped={sum(proxy.skipped.values())}")
        print(f"card_redraws={sum(b.incidents.cards.redraws for b in bots if b.incidents is not None)}")
    print(f"incidents: {report.incidents_started} started, {report.incidents_refused} refused with a message")
    print(f"operations: {report.operations} ({dict(report.by_verdict)}) in {report.seconds:.1f} s")
    print(f"faults injected: {dict(report.faults)}")
    for text, count in report.errors_shown.most_common(8):
        print(f"  shown {count:>4}x: {text}")
    for mismatch in report.mismatches[:30]:
        print(f"MISMATCH {mismatch}")
    print(report.summary())
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="stop starting new work after this long")
    parser.add_argument("--incidents", type=int, default=300, help="at most this many incidents")
    parser.add_argument("--concurrency", type=int, default=8, help="people working at the same time")
    parser.add_argument("--seed", type=int, default=1, help="seed of the faults and of the people's choices")
    parser.add_argument("--fault-rate", type=float, default=1.0, help="scale every fault probability")
    parser.add_argument("--log", default=None, help="write the bot's log (INFO) to this file")
    parser.add_argument("--replicas", type=int, default=1, help="bots on one database behind a loopback proxy")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="postgresql: the database at CC_TEST_POSTGRES_URL")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.incidents, args.concurrency, args.seed, args.fault_rate, args.log,
                     replicas=max(1, args.replicas), database=args.database))
