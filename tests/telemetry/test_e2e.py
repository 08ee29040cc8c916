"""Telemetry end to end: people act through the sandbox; a loopback data plane receives what is sent."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import telemetry.client as telemetry_client
from domain.ids import is_valid_id
from services.playbooks import title_key
from telemetry import (
    DIAGNOSTIC_ID_KEY,
    NULL_TELEMETRY,
    UPLOAD_THREAD_NAME,
    RudderOptions,
    RudderTelemetry,
)
from tests.e2e.conftest import make_playbook
from tests.telemetry.gate import UploadGate
from tests.telemetry.sink import closed_port_url
from version import TESTED_MATTERMOST, __version__

WRITE_KEY = "e2e-write-key"
PROPERTY_EXAMPLES = 6


def keys(url: str) -> dict:
    return {"rudder_write_key": WRITE_KEY, "rudder_data_plane_url": url}


async def start_incident(sandbox, app, user="alice", name="Checkout errors", description="", playbook_id=None):
    """Type /incident start, pick the playbook (default: the first offered), submit; return the stored incident."""
    person = sandbox.user(user)
    result = await person.command("town-square", "/incident start")
    assert result.dialog is not None, result.ephemeral
    playbook_id = playbook_id or result.dialog["dialog"]["elements"][0]["options"][0]["value"]
    outcome = await person.submit_dialog({"playbook": playbook_id, "name": name, "description": description})
    assert outcome.closed, (outcome.errors, outcome.error)
    team_id = sandbox.team("acme")["id"]
    page = await app.store.list_incidents(team_id, is_admin=True, per_page=100)
    return max(page.items, key=lambda incident: incident.created_at)


async def add_member(sandbox, channel_id, username, by="alice"):
    headers = {"Authorization": f"Bearer {sandbox.user(by).token}"}
    async with aiohttp.ClientSession(headers=headers) as http, http.post(
            f"{sandbox.url}/api/v4/channels/{channel_id}/members", json={"user_id": sandbox.user_id(username)}) as response:
        assert response.status == 201, await response.text()


async def command(person, channel_id, text, *, confirm=False):
    result = await person.command(channel_id, text)
    assert result.status == 200 and result.error is None, (text, result.error)
    if confirm:
        assert result.dialog is not None, (text, result.ephemeral)
        assert (await person.submit_dialog({})).closed
    return result


def upload_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.name == UPLOAD_THREAD_NAME or type(t).__module__.startswith("rudderstack")]


async def test_each_user_action_sends_its_event_with_ids_and_metadata(sandbox, sink, start_bot):
    app = await start_bot(**keys(sink.url))
    telemetry = app.ctx.telemetry
    assert isinstance(telemetry, RudderTelemetry)
    await make_playbook(app, sandbox, members=("alice", "bob"), commands={"Acknowledge the alert": "/incident help"})
    incident = await start_incident(sandbox, app)
    cid = incident.channel_id
    await add_member(sandbox, cid, "bob")
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    await command(alice, cid, "/incident check 1.1")
    await command(bob, cid, "/incident uncheck 1.1")
    await command(alice, cid, "/incident assign 1.2 @bob")
    await command(alice, cid, "/incident run 1.1")
    await command(bob, cid, "/incident step add Call the vendor")
    await command(alice, cid, "/incident step rename 1.4 Call the payment vendor")
    await command(alice, cid, "/incident step move 1.4 1")
    await command(alice, cid, "/incident step remove 1.2")
    await command(bob, cid, "/incident stage next")
    await command(alice, cid, "/incident commander @bob")
    await command(bob, cid, "/incident end", confirm=True)
    await command(alice, cid, "/incident restart", confirm=True)
    await sandbox.user("carol").post("town-square", "not an incident action")

    expected = [
        ("incident_created", None), ("checklist_item_checked", "alice"), ("checklist_item_unchecked", "bob"),
        ("checklist_item_assigned", "alice"), ("checklist_item_command_run", "alice"),
        ("checklist_item_created", "bob"), ("checklist_item_renamed", "alice"), ("checklist_item_moved", "alice"),
        ("checklist_item_removed", "alice"), ("stage_changed", "bob"), ("commander_changed", "alice"),
        ("incident_ended", "bob"), ("incident_restarted", "alice"),
    ]
    await asyncio.to_thread(telemetry.flush)
    events = sink.events()
    assert [e["event"] for e in events] == [name for name, _ in expected]

    diagnostic_id = await app.store.get_setting(DIAGNOSTIC_ID_KEY)
    assert is_valid_id(diagnostic_id)
    for batch in sink.batches:
        assert batch.path == "/v1/batch" and batch.write_key == WRITE_KEY
    metadata = {"diagnosticID": diagnostic_id, "serverVersion": TESTED_MATTERMOST, "pluginVersion": __version__}
    final = await app.store.get_incident(incident.id)
    whole = {"ID": incident.id, "CommanderUserID": sandbox.user_id("alice"), "TeamID": incident.team_id,
             "CreatedAt": incident.created_at, "ChannelIDs": [cid], "PostID": "", "NumChecklists": 3,
             "TotalChecklistItems": 7}
    for event, (name, actor) in zip(events, expected):
        assert event["type"] == "track" and event["anonymousId"] == diagnostic_id
        props = event["properties"]
        assert {k: props[k] for k in metadata} == metadata, name
        body = {k: v for k, v in props.items() if k not in metadata}
        if name == "incident_created":
            assert body == {**whole, "IsActive": True}
        elif name in ("incident_ended", "incident_restarted"):
            assert body == {**whole, "IsActive": name == "incident_restarted", "UserID": sandbox.user_id(actor),
                            "CommanderUserID": sandbox.user_id("bob"), "TotalChecklistItems": final.steps_total}
        elif name == "commander_changed":
            assert body == {"IncidentID": incident.id, "UserID": sandbox.user_id(actor),
                            "CommanderUserID": sandbox.user_id("bob")}
        else:
            assert body == {"IncidentID": incident.id, "UserID": sandbox.user_id(actor)}, name


async def test_refused_actions_send_nothing(sandbox, sink, start_bot):
    app = await start_bot(**keys(sink.url))
    await make_playbook(app, sandbox)
    incident = await start_incident(sandbox, app)
    await asyncio.to_thread(app.ctx.telemetry.flush)
    assert [e["event"] for e in sink.events()] == ["incident_created"]
    dave, alice = sandbox.user("dave"), sandbox.user("alice")
    await dave.command(incident.channel_id, "/incident check 1.1")  # not a member: refused
    await command(alice, incident.channel_id, "/incident check 9.9")  # no such step
    await command(alice, incident.channel_id, "/incident stage 1")  # already there: no change
    await command(alice, incident.channel_id, "/incident check 1.1")
    await asyncio.to_thread(app.ctx.telemetry.flush)
    assert [e["event"] for e in sink.events()] == ["incident_created", "checklist_item_checked"]


async def create_playbook(sandbox, app, username, title, description=None):
    """Create a playbook from the incident-response template through the dialog; return it."""
    person = sandbox.user(username)
    result = await person.command("town-square", "/incident playbook create incident-response")
    assert result.dialog is not None, result.ephemeral
    outcome = await person.submit_dialog({"template": "incident-response", "title": title,
                                          "description": description, "channel": None})
    assert outcome.closed, (outcome.errors, outcome.error)
    mine = await app.store.playbooks_for_user(sandbox.team("acme")["id"], sandbox.user_id(username), is_admin=False)
    return max(mine, key=lambda playbook: playbook.created_at)


async def test_playbook_changes_send_their_events(sandbox, sink, start_bot):
    app = await start_bot(**keys(sink.url))
    bob = sandbox.user("bob")
    playbook = await create_playbook(sandbox, app, "bob", "Payments down", "Card payments fail")
    await command(bob, "town-square", '/incident playbook edit "Payments down" step add 1 Call the bank')
    await command(bob, "town-square", '/incident playbook edit "Payments down" stage add Learn')
    await command(bob, "town-square", '/incident playbook delete "Payments down"', confirm=True)
    assert await app.store.get_playbook(playbook.id) is None
    await asyncio.to_thread(app.ctx.telemetry.flush)
    stages, steps = len(playbook.stages), playbook.step_count
    assert [(e["event"], {k: v for k, v in e["properties"].items()
                          if k not in ("diagnosticID", "serverVersion", "pluginVersion")}) for e in sink.events()] == [
        ("playbook_created", {"PlaybookID": playbook.id, "TeamID": playbook.team_id, "NumChecklists": stages,
                              "TotalChecklistItems": steps}),
        ("playbook_updated", {"PlaybookID": playbook.id, "TeamID": playbook.team_id, "NumChecklists": stages,
                              "TotalChecklistItems": steps + 1}),
        ("playbook_updated", {"PlaybookID": playbook.id, "TeamID": playbook.team_id, "NumChecklists": stages + 1,
                              "TotalChecklistItems": steps + 1}),
        ("playbook_deleted", {"PlaybookID": playbook.id, "TeamID": playbook.team_id, "NumChecklists": stages + 1,
                              "TotalChecklistItems": steps + 1}),
    ]
    assert all(e["properties"]["pluginVersion"] == __version__ for e in sink.events())


# Content never leaks ---------------------------------------------------------------------------

# Random user text, wrapped in marks so that a short random string cannot match an id by chance.
line = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp")),
               min_size=1, max_size=24).map(lambda t: f"«{t.strip()}»")
# Playbook edit subcommands are split shell-style, so their random text leaves out quotes and backslashes.
word_line = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp"),
                                  blacklist_characters="\"'\\"), min_size=1, max_size=24).map(lambda t: f"«{t.strip()}»")


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


async def test_no_incident_or_playbook_text_ever_reaches_the_data_plane(sandbox, sink, start_bot):
    app = await start_bot(**keys(sink.url))
    telemetry = app.ctx.telemetry
    await add_member(sandbox, sandbox.channel("acme", "town-square")["id"], "bob")
    loop = asyncio.get_running_loop()
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    used_titles: set[str] = set()

    async def flow(title, stage, step, name, description, new_step, renamed, message, playbook_title,
                   playbook_step):
        stored_playbook = await make_playbook(app, sandbox, title=title, members=("alice", "bob"),
                                              stages=((stage, (step, "Second step")),), commands={step: "/incident help"})
        created = await create_playbook(sandbox, app, "alice", playbook_title, description)
        await command(alice, "town-square", f"/incident playbook edit {created.id} step add 1 {playbook_step}")
        await command(alice, "town-square", f"/incident playbook edit {created.id} stage add {playbook_step}")
        incident = await start_incident(sandbox, app, name=name, description=description,
                                        playbook_id=stored_playbook.id)
        cid = incident.channel_id
        await add_member(sandbox, cid, "bob")
        await alice.post(cid, message)
        await command(alice, cid, "/incident check 1.1")
        await command(alice, cid, "/incident run 1.1")
        await command(bob, cid, f"/incident step add {new_step}")
        await command(bob, cid, f"/incident step rename 1.3 {renamed}")
        await command(alice, cid, "/incident step move 1.3 1")
        await command(alice, cid, f"/incident announce ~{sandbox.channel('acme', 'town-square')['name']}")
        await command(alice, cid, "/incident commander @bob")
        await command(bob, cid, "/incident end", confirm=True)
        edited = await app.store.get_playbook(created.id)
        await command(alice, "town-square", f"/incident playbook delete {created.id}", confirm=True)
        await asyncio.to_thread(telemetry.flush)
        stored = await app.store.get_incident(incident.id)
        texts = {title, stage, step, name, description, new_step, renamed, message, playbook_title, playbook_step,
                 stored.name, stored.description, stored.playbook_title, edited.title, edited.description}
        texts |= {s.title for stage_ in edited.stages for s in stage_.steps} | {s.title for s in edited.stages}
        texts |= {s.title for stage_ in stored.stages for s in stage_.steps} | {s.title for s in stored.stages}
        return {text for text in texts if text}

    # No shrinking phase: each example is a whole conversation with the bot, and a failure already
    # names the texts that leaked.
    @settings(max_examples=PROPERTY_EXAMPLES, deadline=None, database=None,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(title=line, stage=line, step=line, name=line, description=line, new_step=line, renamed=line,
           message=line, playbook_title=line, playbook_step=word_line)
    def run(**texts):
        assume(texts["renamed"] != texts["new_step"])  # renaming to the same title is no change
        # Playbook titles are unique per team (ignoring case and spacing).
        assume(title_key(texts["playbook_title"]) not in used_titles | {title_key(texts["title"])})
        used_titles.add(title_key(texts["title"]))
        before = len(sink.events())
        secrets = asyncio.run_coroutine_threadsafe(flow(**texts), loop).result(timeout=60)
        sent = sink.events()[before:]
        assert [e["event"] for e in sent] == [
            "playbook_created", "playbook_updated", "playbook_updated", "incident_created", "checklist_item_checked",
            "checklist_item_command_run", "checklist_item_created", "checklist_item_renamed", "checklist_item_moved",
            "commander_changed", "incident_ended", "playbook_deleted"]
        for event in sent:
            for value in strings_in(event):
                for secret in secrets:
                    assert secret not in value, (event["event"], secret)
        for batch in sink.batches:
            raw = json.dumps(batch.body, ensure_ascii=False)
            assert not [secret for secret in secrets if secret in raw]

    # Hypothesis drives the examples from a worker thread; each example runs on this event loop.
    await asyncio.to_thread(run)


# Never delays or breaks a user action ---------------------------------------------------------

@pytest.mark.parametrize("plane", ["hanging", "down"])
async def test_actions_complete_normally_when_the_data_plane_hangs_or_is_down(sandbox, hanging_sink, start_bot,
                                                                              plane, caplog, monkeypatch):
    """Every answer is sent while the upload thread is held inside its HTTP post by the test (so no
    answer can have waited for the data plane), and the bot stops while it is still held."""
    caplog.set_level(logging.INFO, logger="telemetry")
    gate = UploadGate(monkeypatch)
    monkeypatch.setattr(telemetry_client, "RudderOptions", functools.partial(RudderOptions, close_timeout=0.2))
    url = hanging_sink.url if plane == "hanging" else closed_port_url()
    app = await start_bot(**keys(url))
    app.ctx.telemetry.track("probe", {})
    assert await asyncio.to_thread(gate.entered.wait, 30)  # the upload thread is now held, mid-upload
    await make_playbook(app, sandbox)
    incident = await start_incident(sandbox, app)
    alice = sandbox.user("alice")
    for text in ("/incident check 1.1", "/incident step add Call the vendor", "/incident stage next"):
        result = await command(alice, incident.channel_id, text)
        assert result.ephemeral == [], (text, result.ephemeral)
    await command(alice, incident.channel_id, "/incident end", confirm=True)
    final = await app.store.get_incident(incident.id)
    assert not final.is_ongoing and final.steps_done == 1 and final.active_stage == 1
    assert not gate.is_open and hanging_sink.batches == []  # all of it happened with nothing uploaded
    assert app.ctx.telemetry.queued > 0  # the actions' events wait in memory
    uploader = app.ctx.telemetry._client.consumers[0]
    await app.stop()  # bounded by close_timeout, not by the held upload
    assert not gate.is_open and uploader.is_alive()
    assert any("stopped with" in r.getMessage() and "unsent" in r.getMessage() for r in caplog.records)
    gate.open()
    if plane == "hanging":
        await hanging_sink.wait_for(lambda s: s.batches)  # the sender did try
        hanging_sink.release()
    await asyncio.to_thread(uploader.join, 30)  # the held batch is uploaded or dropped, then the thread ends
    assert not uploader.is_alive()
    if plane == "down":
        assert any("telemetry: dropped" in r.getMessage() for r in caplog.records)  # retried, then dropped


# Off by default ------------------------------------------------------------------------------

async def test_off_by_default_sends_nothing_and_starts_no_thread(sandbox, sink, start_bot):
    before = set(threading.enumerate())
    app = await start_bot()
    assert app.ctx.telemetry is NULL_TELEMETRY
    await make_playbook(app, sandbox)
    incident = await start_incident(sandbox, app)
    await command(sandbox.user("alice"), incident.channel_id, "/incident check 1.1")
    await command(sandbox.user("alice"), incident.channel_id, "/incident end", confirm=True)
    started = set(threading.enumerate()) - before
    assert not [t for t in started if t in upload_threads()], started
    assert await app.store.get_setting(DIAGNOSTIC_ID_KEY) is None
    await app.stop()
    assert sink.batches == []


async def test_the_switch_turns_it_off_even_with_both_keys(sandbox, sink, start_bot):
    app = await start_bot(telemetry_enabled=False, **keys(sink.url))
    assert app.ctx.telemetry is NULL_TELEMETRY
    await make_playbook(app, sandbox)
    incident = await start_incident(sandbox, app)
    await command(sandbox.user("alice"), incident.channel_id, "/incident check 1.1")
    await app.stop()
    assert sink.batches == []
