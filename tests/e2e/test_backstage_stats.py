"""The backstage's stats page (issue 19) end to end: the figures are exactly ``/incident stats``'s
for the same viewer and data (a private incident counts only for its channel's members and system
admins; another team's never), narrowed by playbook and severity, week by week, drawn as SVG with a
table of the same numbers; bad input is refused with what to do.

The world is tests/e2e/test_stats.py's: two teams, a public and a private playbook, incidents ended
after known times.
"""

from __future__ import annotations

import html
import re

import pytest

from sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import EDIT_TIME_LIMIT
from tests.e2e.test_history import two_team_seed
from tests.e2e.test_stats import stats, table, the_world

from .backstage import BackstageClient


@pytest.fixture
async def sandbox():
    async with Sandbox(two_team_seed(), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb


def page_table(page: str, table_id: str) -> dict[str, tuple[int, int, str, str]]:
    """A figures table of the page: label → (incidents, resolved, median, p90)."""
    start = page.index(f'<table id="{table_id}"')
    body = page[start:page.index("</table>", start)]
    rows = {}
    for cells in re.findall(r"<tr><td>(.*?)</td><td class=\"num\">(\d+)</td><td class=\"num\">(\d+)</td>\s*"
                            r"<td class=\"num\">(.*?)</td><td class=\"num\">(.*?)</td></tr>", body, re.S):
        rows[html.unescape(cells[0])] = (int(cells[1]), int(cells[2]), cells[3], cells[4])
    return rows


def chat_rows(text: str) -> tuple[dict[str, tuple[int, int, str, str]], dict[str, tuple[int, int, str, str]]]:
    """``/incident stats``' table as (per playbook, per severity of everything)."""
    rows = table(text)
    per_playbook = {("All" if label == "**All**" else label): figures
                    for (label, severity), figures in rows.items() if severity == "all"}
    per_severity = {severity: figures for (label, severity), figures in rows.items()
                    if label == "**All**" and severity != "all"}
    return per_playbook, per_severity


@pytest.mark.parametrize("username", ["dave", "carol", "alice"])
async def test_the_page_shows_exactly_the_chat_figures_for_each_viewer(sandbox, bot, username):
    await the_world(sandbox, bot)
    per_playbook, per_severity = chat_rows(await stats(sandbox, username))
    async with await BackstageClient.signed_in(bot, sandbox, username) as client:
        status, page = await client.get("/stats")
        assert status == 200 and ">Stats</a>" in page
    assert page_table(page, "table-playbooks") == per_playbook
    if per_severity:
        assert page_table(page, "table-severities") == per_severity
    if username == "dave":  # not in the private channels: none of their incidents (the playbook is his to pick)
        tables = page[page.index('<section class="card">'):]
        assert "Security" not in tables and "secret" not in tables.lower()
    # Week by week adds up to the totals, and each week's incidents are drawn as a bar.
    weeks = page_table(page, "table-weeks")
    assert sum(row[0] for row in weeks.values()) == per_playbook["All"][0]
    assert sum(row[1] for row in weeks.values()) == per_playbook["All"][1]
    chart = page[page.index('<svg id="chart-per-week"'):page.index("</svg>", page.index('<svg id="chart-per-week"'))]
    assert chart.count('<rect class="bar"') == len(weeks)
    assert f": {per_playbook['All'][0]}</title>" in chart or len([w for w in weeks.values() if w[0]]) > 1
    trend = page[page.index('<svg id="chart-trend"'):]
    assert '<circle class="point median"' in trend


async def test_narrowing_by_playbook_severity_and_period(sandbox, bot):
    await the_world(sandbox, bot)
    outage = next(p for p in await bot.store.playbooks_for_user(sandbox.team("acme")["id"], "", is_admin=True)
                  if p.title == "Outage")
    per_playbook, _ = chat_rows(await stats(sandbox, "carol", '"Outage"'))
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        _, page = await carol.get(f"/stats?playbook={outage.id}")
        shown = page_table(page, "table-playbooks")
        assert shown == {**per_playbook, "All": per_playbook["Outage"]}  # (chat leaves out "All" of one)
        assert "of playbook “Outage”" in page
        _, page = await carol.get("/stats?severity=SEV1")
        assert page_table(page, "table-playbooks")["All"] == (2, 2, "10m", "2h")
        assert list(page_table(page, "table-severities")) == ["SEV1"]
        _, page = await carol.get("/stats?severity=-")  # the incidents without a severity
        assert page_table(page, "table-severities") == {"not set": (1, 0, "–", "–")}
        chat_90, _ = chat_rows(await stats(sandbox, "carol", "--days 90"))
        _, page = await carol.get("/stats?days=90")
        assert page_table(page, "table-playbooks") == chat_90
        for bad in ("0", "x", "99999"):
            status, page = await carol.get(f"/stats?days={bad}")
            assert status == 400 and "number of days from 1 to" in page


async def test_a_playbook_or_team_one_may_not_use_is_not_found(sandbox, bot):
    await the_world(sandbox, bot)
    acme = sandbox.team("acme")["id"]
    security = next(p for p in await bot.store.playbooks_for_user(acme, "", is_admin=True) if p.title == "Security")
    async with await BackstageClient.signed_in(bot, sandbox, "dave") as dave:
        security_members = set(security.member_ids)
        assert sandbox.user_id("dave") in security_members  # a member of the playbook, not of its private channels
        _, page = await dave.get(f"/stats?playbook={security.id}")
        assert page_table(page, "table-playbooks") == {"All": (0, 0, "–", "–")}
        status, _ = await dave.get("/stats?playbook=someoneelsesplaybook")
        assert status == 404
        status, _ = await dave.get(f"/stats?team={sandbox.team('globex')['id']}")  # dave is not in globex
        assert status == 404
    async with await BackstageClient.signed_in(bot, sandbox, "bob") as bob:
        status, page = await bob.get(f"/stats?team={sandbox.team('globex')['id']}")
        assert status == 200 and page_table(page, "table-playbooks")["Globex plan"] == (1, 1, "7m", "7m")
        assert "Outage" not in page_table(page, "table-playbooks")


async def test_hostile_filters_are_rendered_inert(sandbox, bot):
    await the_world(sandbox, bot)
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        status, page = await carol.get('/stats?severity="><script>alert(1)</script>')
        assert status == 200 and "<script>" not in page and "&lt;script&gt;" in page
        assert page_table(page, "table-playbooks")["All"][0] == 0
