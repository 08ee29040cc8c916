"""End-to-end fixtures: the sandbox Mattermost and the real bot on loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import CommandCenter
from sandbox import Sandbox, SandboxConfig
from settings import Settings
from tests import pg
from tests.contract.openapi_contract import assert_exchanges_valid

ROOT = Path(__file__).resolve().parents[2]
DEMO_SEED = ROOT / "sandbox" / "seeds" / "demo.yaml"
# Every bot test runs with ServiceSettings.PostEditTimeLimit set, as an administrator may set it:
# whatever the bot edits must keep working once its posts are older than this (seconds).
EDIT_TIME_LIMIT = 300

#: The PostgreSQL run of the e2e suite (issue 20): every test of these modules runs twice, with the bot
#: on its default SQLite file and on a fresh PostgreSQL database (``tests/pg.py``): starting incidents,
#: the checklist, the list, status updates and reminders, restarts, and SIGKILL recovery.
POSTGRES_MODULES = frozenset({
    "test_incidents", "test_step_commands", "test_history", "test_status_updates", "test_reminders",
    "test_restart_catchup", "test_replay_restart", "test_reminder_sigkill", "test_start_recovery",
    "test_replicas", "test_timeline", "test_fields", "test_alerts", "test_webhooks", "test_stats",
})
#: ``CC_TEST_E2E_DATABASE=postgresql`` runs every other bot test on PostgreSQL too (read at import:
#: each test clears ``CC_*`` from its environment).
DEFAULT_DATABASE = os.environ.get("CC_TEST_E2E_DATABASE", "sqlite")
if DEFAULT_DATABASE not in ("sqlite", "postgresql"):
    raise ValueError(f"CC_TEST_E2E_DATABASE is sqlite or postgresql, not {DEFAULT_DATABASE!r}")


def pytest_generate_tests(metafunc) -> None:
    if "e2e_database" in metafunc.fixturenames and metafunc.module.__name__.rsplit(".", 1)[-1] in POSTGRES_MODULES:
        metafunc.parametrize("e2e_database", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def e2e_database(request) -> Iterator[str | None]:
    """The bot's database URL: None for its default SQLite file in its data directory, or a fresh
    PostgreSQL database (dropped after the test) in the modules of ``POSTGRES_MODULES`` (and in all
    of them with ``CC_TEST_E2E_DATABASE=postgresql``)."""
    if getattr(request, "param", DEFAULT_DATABASE) == "sqlite":
        yield None
        return
    url = pg.fresh_database()
    yield url
    pg.drop_database(url)


def bot_settings(sandbox: Sandbox, data_dir: Path, **overrides) -> Settings:
    values = dict(mattermost_url=sandbox.url, bot_token=sandbox.token_of("incident"), listen_host="127.0.0.1",
                  listen_port=0, data_dir=data_dir, log_level="INFO", request_timeout=5.0)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def sandbox():
    """The demo world; every REST exchange of the test (the bot's and the simulated users') is
    checked against Mattermost's OpenAPI description when the test ends."""
    async with Sandbox(DEMO_SEED, config=SandboxConfig(record=True, post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb
        exchanges = list(sb.recording)
    judged = assert_exchanges_valid(exchanges)
    assert judged > 0 or not exchanges


@pytest.fixture
async def start_bot(sandbox, tmp_path, e2e_database):
    """Start a bot (more than once if a test restarts it: always on the same database); every bot is
    stopped at the end."""
    started: list[CommandCenter] = []

    async def start(**overrides) -> CommandCenter:
        if e2e_database is not None:
            overrides.setdefault("database_url", e2e_database)
        app = CommandCenter(bot_settings(sandbox, tmp_path / "data", **overrides))
        await app.start()
        started.append(app)
        await app.wait_connected()
        return app

    yield start
    for app in reversed(started):
        await app.stop()


@pytest.fixture
async def bot(start_bot):
    return await start_bot()


async def make_playbook(app: CommandCenter, sandbox: Sandbox, *, title: str = "Incident Response",
                        members: tuple[str, ...] = ("alice",), public: bool = True,
                        stages: tuple[tuple[str, tuple[str, ...]], ...] | None = None,
                        commands: dict[str, str] | None = None):
    """Store a playbook directly (the playbook commands have their own tests)."""
    import time

    from domain.playbooks import StageDraft, StepDraft, new_playbook

    stages = stages or (("Triage", ("Acknowledge the alert", "Assess customer impact", "Page the on-call")),
                        ("Investigation", ("Check recent deploys", "Look at dashboards")),
                        ("Resolution", ("Apply the fix", "Write the postmortem")))
    commands = commands or {}
    member_ids = [sandbox.user_id(name) for name in members]
    playbook = new_playbook(
        team_id=sandbox.team("acme")["id"], title=title, created_by=member_ids[0], now=int(time.time() * 1000),
        create_public_channel=public, member_ids=member_ids,
        stages=[StageDraft(title=stage, steps=tuple(StepDraft(title=step, command=commands.get(step, ""))
                                                    for step in steps)) for stage, steps in stages])
    return await app.store.create_playbook(playbook)
