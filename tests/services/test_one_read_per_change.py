"""One store read per change: a typed change reads the incident once; the atomic write loads it once
more inside its own transaction (the version check), and the card is drawn from what was saved."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import card, card_text, start_incident

READS = ("get_incident", "incident_by_channel", "incidents_by_ids", "list_incidents", "list_incident_refs")
WRITES = ("mutate_incident", "update_incident")


async def warm(sandbox, channel_id: str) -> None:
    """The first command in a channel also learns the channel's team (gateway/binding.py asks the store
    once per channel, then remembers it): type one that changes nothing before counting."""
    assert (await sandbox.user("alice").command(channel_id, "/incident stage")).status == 200


class Counting:
    """Counts the calls of the store's incident reads and writes while active."""

    def __init__(self, store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in READS + WRITES:
            original = getattr(store, name)

            async def counted(*args, _name=name, _original=original, **kwargs):
                self.calls.append(_name)
                return await _original(*args, **kwargs)

            monkeypatch.setattr(store, name, counted)

    @property
    def reads(self) -> list[str]:
        return [c for c in self.calls if c in READS]

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls if c in WRITES]


async def test_incident_check_reads_the_incident_once(sandbox, bot, monkeypatch):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    await warm(sandbox, channel["id"])
    counting = Counting(bot.store, monkeypatch)
    result = await alice.command(channel["id"], "/incident check 1.1")
    assert result.status == 200 and result.ephemeral in ([], [""]), result.ephemeral
    assert counting.reads == ["incident_by_channel"]
    assert counting.writes == ["mutate_incident"]
    # The change is stored, announced and on the card, drawn from the saved incident.
    stored = await bot.store.get_incident(incident.id)
    assert stored.stages[0].steps[0].done and stored.version == incident.version + 1
    assert "✅ **1.1** Acknowledge the alert" in card_text(card(sandbox, stored))
    assert "@alice checked 1.1 **Acknowledge the alert**." in [p["message"] for p in sandbox.posts(channel["id"])]


@pytest.mark.parametrize("typed", ["/incident stage next", "/incident step add Call the vendor",
                                   "/incident assign 1.2 @alice"])
async def test_other_typed_changes_read_the_incident_once(sandbox, bot, monkeypatch, typed):
    await make_playbook(bot, sandbox)
    _incident, channel = await start_incident(sandbox, bot)
    await warm(sandbox, channel["id"])
    counting = Counting(bot.store, monkeypatch)
    result = await sandbox.user("alice").command(channel["id"], typed)
    assert result.status == 200
    assert counting.reads == ["incident_by_channel"] and counting.writes == ["mutate_incident"]


async def test_a_card_never_goes_back_to_an_older_version(sandbox, bot):
    await make_playbook(bot, sandbox)
    incident, channel = await start_incident(sandbox, bot)
    alice = sandbox.user("alice")
    await alice.command(channel["id"], "/incident check 1.1")
    old = await bot.store.get_incident(incident.id)
    await alice.command(channel["id"], "/incident check 1.2")
    newest = await bot.store.get_incident(incident.id)
    # A late rebuild handed the older saved state draws the newest one instead (read from the store).
    outcome, drawn = await bot.incidents.cards.refresh(incident.id, saved=old)
    assert drawn.version == newest.version and drawn.stages[0].steps[1].done
    assert outcome in ("edited", "unchanged")
