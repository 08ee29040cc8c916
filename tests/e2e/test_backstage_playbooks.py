"""The backstage's playbook pages (issue 19) end to end: the list, a playbook's page and its editor
(numbered inputs, add/move/remove buttons re-rendering the draft, Save through PlaybookService with
the YAML parser's checks at each input and the version check), YAML download and upload — and the
abuse list: signed out, a non-member, another team, a member who left the team, CSRF, two editors
at once, hostile YAML (aliases, depth, size), XSS in every field rendered.

Whoever may see a playbook in chat may edit it (its members and system admins); there is no
view-only role, so the "may view but not edit" case is every non-member: 404 for both.
"""

from __future__ import annotations

import re
import time

import aiohttp
import pytest

from domain.playbooks import StageDraft, StepDraft, new_playbook
from sandbox import Sandbox, SandboxConfig
from services.playbooks import STALE_EDIT
from tests.e2e.conftest import EDIT_TIME_LIMIT
from tests.e2e.test_history import quick_incident, two_team_seed

from .backstage import BackstageClient


@pytest.fixture
async def sandbox():
    async with Sandbox(two_team_seed(), config=SandboxConfig(post_edit_time_limit=EDIT_TIME_LIMIT)) as sb:
        yield sb


async def playbook_of(bot, sandbox, *, title: str = "Outage", team: str = "acme",
                      members: tuple[str, ...] = ("carol",), public: bool = True, description: str = "",
                      steps: tuple[tuple[str, str], ...] = (("Acknowledge", ""), ("Assess impact", ""))):
    member_ids = [sandbox.user_id(name) for name in members]
    playbook = new_playbook(
        team_id=sandbox.team(team)["id"], title=title, created_by=member_ids[0], now=int(time.time() * 1000),
        create_public_channel=public, member_ids=member_ids, description=description,
        stages=[StageDraft(title="Triage", steps=tuple(StepDraft(title=t, command=c) for t, c in steps)),
                StageDraft(title="Resolution", steps=(StepDraft(title="Fix it"),))])
    return await bot.store.create_playbook(playbook)


def form_of(page: str) -> dict[str, str]:
    """The editor's inputs as the page rendered them (what a browser would send back)."""
    editor = page[page.index('id="editor"'):page.index("</form>", page.index('id="editor"'))]
    values: dict[str, str] = {}
    for name, value in re.findall(r'<input[^>]*?name="([^"]+)"[^>]*?value="([^"]*)"', editor):
        values[name] = _unescape(value)
    for name, value in re.findall(r'<textarea[^>]*?name="([^"]+)"[^>]*>(.*?)</textarea>', editor, re.S):
        values[name] = _unescape(value)
    for name, body in re.findall(r'<select[^>]*?name="([^"]+)"[^>]*>(.*?)</select>', editor, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        values[name] = _unescape(chosen.group(1)) if chosen else ""
    values.pop("csrf", None)
    return values


def _unescape(text: str) -> str:
    import html
    return html.unescape(text)


def outline(playbook) -> list[tuple[str, list[str]]]:
    return [(stage.title, [step.title for step in stage.steps]) for stage in playbook.stages]


async def test_signed_out_every_playbook_page_sends_to_login_and_changes_nothing(bot, sandbox):
    playbook = await playbook_of(bot, sandbox)
    async with BackstageClient(bot) as browser:
        for path in ("/playbooks", f"/playbooks/{playbook.id}", f"/playbooks/{playbook.id}.yaml", "/stats"):
            status, _ = await browser.get(path)
            assert status == 303, path
        status, _ = await browser.post(f"/playbooks/{playbook.id}", {"op": "save", "title": "Hacked", "stages": "0"},
                                       csrf=False)
        assert status == 401
        status, _ = await browser.post("/playbooks/new", {"team": playbook.team_id, "title": "X"}, csrf=False)
        assert status == 401
    assert (await bot.store.get_playbook(playbook.id)).title == "Outage"


async def test_the_list_shows_what_chat_lists_with_counts_members_and_last_use(bot, sandbox):
    mine = await playbook_of(bot, sandbox, title="Outage", members=("carol", "bob"))
    secret = await playbook_of(bot, sandbox, title="Secret plan", members=("dave",), public=False)
    await quick_incident(bot, sandbox, mine, "Used once", "carol", at=bot.ctx.clock() - 60_000)
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:
        status, page = await carol.get("/playbooks")
        assert status == 200 and ">Playbooks</a>" in page  # the navigation entry
        row = page[page.index(f"/playbooks/{mine.id}"):]
        row = row[:row.index("</tr>")]
        assert "Outage" in row and "@carol, @bob" in row and "public" in row
        assert re.search(r'class="num">2<.*class="num">3<', row, re.S)  # 2 stages, 3 steps
        assert "UTC" in row  # last used
        assert "Secret plan" not in page and secret.id not in page
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as admin:  # a system admin: every one
        _, page = await admin.get("/playbooks")
        assert "Secret plan" in page and "never" in page


async def test_other_teams_and_non_members_get_not_found_everywhere(bot, sandbox):
    secret = await playbook_of(bot, sandbox, title="Secret plan", members=("carol",))
    globex = await playbook_of(bot, sandbox, title="Globex plan", team="globex", members=("bob",))
    async with await BackstageClient.signed_in(bot, sandbox, "bob") as bob:
        for path in (f"/playbooks/{secret.id}", f"/playbooks/{secret.id}.yaml",
                     f"/playbooks/{secret.id}?team={sandbox.team('globex')['id']}"):
            status, page = await bob.get(path)
            assert status == 404 and "nothing here" in page.lower(), path
        status, _ = await bob.post(f"/playbooks/{secret.id}", {"op": "save", "version": "1", "title": "Mine now",
                                                              "stages": "1", "stage-1-title": "x",
                                                              "stage-1-steps": "0"})
        assert status == 404
        status, _ = await bob.post(f"/playbooks/{secret.id}/upload", {"version": "1",
                                                                     "yaml": "title: Mine\nstages:\n- title: x\n"})
        assert status == 404
        # bob's own globex playbook, through its team; the acme list does not show it.
        status, page = await bob.get(f"/playbooks?team={sandbox.team('globex')['id']}")
        assert status == 200 and "Globex plan" in page
        _, page = await bob.get("/playbooks")
        assert "Globex plan" not in page or 'value="' + sandbox.team("globex")["id"] + '" selected' in page
    async with await BackstageClient.signed_in(bot, sandbox, "carol") as carol:  # carol is not in globex
        status, _ = await carol.get(f"/playbooks?team={sandbox.team('globex')['id']}")
        assert status == 404
        status, _ = await carol.get(f"/playbooks/{globex.id}")
        assert status == 404
    assert (await bot.store.get_playbook(secret.id)).title == "Secret plan"


async def test_a_member_who_left_the_team_no_longer_sees_the_playbook(bot, sandbox):
    playbook = await playbook_of(bot, sandbox, members=("carol", "dave"))
    team_id = playbook.team_id
    async with await BackstageClient.signed_in(bot, sandbox, "dave") as dave:
        status, _ = await dave.get(f"/playbooks/{playbook.id}")
        assert status == 200
        sandbox.world.team_members[team_id].pop(sandbox.user_id("dave"))
        # (Team membership is asked of Mattermost each time, not cached.)
        status, _ = await dave.get(f"/playbooks/{playbook.id}")
        assert status == 404
