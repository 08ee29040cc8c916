"""Red team: alert text is whatever a monitored system put in a label, a title or an annotation
(a URL path, a customer name, a log line). What the bot posts from it must notify nobody, link
nowhere it does not show, and name no channel (issue 21)."""

from __future__ import annotations

import re

import pytest

from domain.alerts import AlertIn, AlertStatus
from gateway.alerts import parse_rules
from tests.fast import test_alerts_fast as base
from tests.fast.test_alerts_fast import RULES, alert_posts, run_pending
from tests.gateway.test_limited_markdown import live_mentions

pytestmark = pytest.mark.fast
alerting = base.alerting  # the fixture

SPOOF = "[https://grafana.example/d/checkout](https://evil.example/login)"
HOSTILE_SUMMARY = f"Dashboard: {SPOOF}\nsee ~town-square and <https://evil.example|grafana> ![i](https://evil.example/p.png)"
HOSTILE_TITLE = f"CPU high {SPOOF} ~town-square"

# A markdown link or image whose text and target are live: "[text](target" with no escape before "[" or "]";
# the bot's own links ("[Source](…)", "[its card](…)") name what they lead to.
LIVE_LINK = re.compile(r"(?<!\\)\[(?!Source\]|its card\])[^\]\\]*(?<!\\)\]\(")


def problems(message: str) -> list[str]:
    found = [f"live mention {m}" for m in live_mentions(message)]
    found += [f"live link at {m.start()}" for m in LIVE_LINK.finditer(message)]
    if re.search(r"(?<!\\)<https?://", message):
        found.append("a live <url|text> or autolink in angle brackets")
    return found


def hostile(fingerprint: str = "h") -> AlertIn:
    return AlertIn(fingerprint=fingerprint, status=AlertStatus.FIRING, title=HOSTILE_TITLE, group_key="g",
                   labels={"severity": "critical", "path": "~town-square @all"},
                   annotations={"summary": HOSTILE_SUMMARY})


async def test_a_suggestion_quotes_the_summary_with_no_live_link_or_channel(alerting):
    h = alerting
    await h.app.alerts.ingest("generic", [hostile()])
    await run_pending(h)
    [post] = alert_posts(h)
    assert problems(post.message) == [], post.message
    assert "grafana.example/d/checkout" in post.message  # still readable, just inert


async def test_a_declared_incident_quotes_the_titles_with_no_live_link_or_channel(tmp_path):
    rules = parse_rules(RULES.replace("mode: suggest", "mode: declare\n    commander: alice"))
    async with _declaring(tmp_path, rules) as h:
        await h.playbook()
        await h.app.alerts.ingest("generic", [hostile()])
        await run_pending(h)
        [incident] = (await h.store.list_incidents(h.acme.id, is_admin=True)).items
        declared = [p for p in h.mm.posts_in(incident.channel_id) if "Declared from" in p.message]
        assert declared, [p.message for p in h.mm.posts_in(incident.channel_id)]
        for post in declared + alert_posts(h):
            assert problems(post.message) == [], post.message


def _declaring(tmp_path, rules):
    from contextlib import asynccontextmanager

    from bot import CommandCenter
    from gateway.signing import Signer
    from services.context import BotContext
    from settings import Settings
    from storage import open_store
    from tests.fast.conftest import SECRET, Harness, fake_world

    @asynccontextmanager
    async def made():
        mm, people, acme, other, town = fake_world()
        settings = Settings(_env_file=None, mattermost_url=mm.base_url, bot_token="x" * 26, data_dir=tmp_path,
                            signing_secret=SECRET, database_url="memory://", telemetry_enabled=False)
        store = await open_store("memory://")
        ctx = BotContext(settings=settings, client=mm, signer=Signer(SECRET), store=store,
                         callback_base_url="http://bot.test")
        app = CommandCenter(settings)
        app.alert_rules = rules
        app.registry.identify(mm.user_id, mm.username)
        for plugin in app.build_plugins(ctx):
            app.registry.include(plugin)
        await app.alerts.resolve()
        try:
            yield Harness(mm, ctx, app, people, acme, other, town)
        finally:
            await store.close()
    return made()
