"""mmpy_bot as the framework, end to end: one login and one client at start, mmpy_bot's environment
variables have no say, and every transport reaches the plugins through the one registry."""

from __future__ import annotations

from mmpy_bot import Plugin

from gateway.routing import Surface
from plugins.direct import THANKS_TEXT, DirectMessagePlugin
from plugins.incidents import IncidentPlugin
from plugins.timeline import TimelinePlugin
from tests.e2e.test_playbooks import dm_bot

LOGIN_PATHS = ("/api/v4/users/me", "/api/v4/users/login")


async def test_the_bot_signs_in_exactly_once_at_start(sandbox, start_bot):
    sandbox.clear_recording()
    bot = await start_bot()
    logins = [(e.method, e.path) for e in sandbox.recording if e.path in LOGIN_PATHS]
    assert logins == [("GET", "/api/v4/users/me")]
    # Every REST call of the start came from the one client: the bot's token, our transport's agent.
    bot_token = sandbox.token_of("incident")
    agents = {e.headers.get("User-Agent", "") for e in sandbox.recording
              if e.headers.get("Authorization", "") == f"Bearer {bot_token}"}
    assert len(agents) == 1
    assert bot.client is not None and bot.client.user_id == sandbox.user_id("incident")


async def test_mmpy_bots_environment_variables_change_nothing(sandbox, start_bot, monkeypatch):
    for key, value in {"MATTERMOST_URL": "https://elsewhere.invalid", "MATTERMOST_PORT": "1",
                       "BOT_TOKEN": "not-the-token", "MATTERMOST_API_PATH": "/nowhere",
                       "WEBHOOK_HOST_ENABLED": "True"}.items():
        monkeypatch.setenv(key, value)
    await start_bot()
    replies = await dm_bot(sandbox, "bob", "thanks!")
    assert [reply["message"] for reply in replies] == [THANKS_TEXT]


async def test_every_feature_is_an_mmpy_bot_plugin_in_the_one_registry(bot):
    registry = bot.registry
    owners = {type(handler.__self__) for table in (registry.commands, registry.actions, registry.dialogs)
              for handler in table.values()}
    owners |= {type(handler.__self__) for handlers in registry.event_handlers.values() for handler in handlers}
    assert owners and all(issubclass(owner, Plugin) for owner in owners)
    assert registry.handles(Surface.EVENT, "reaction_added")
    # Two features read reactions: the start-from-reaction offer, then the timeline's pin.
    assert [type(h.__self__) for h in registry.event_handlers["reaction_added"]] == [IncidentPlugin, TimelinePlugin]
    # Direct messages: mmpy_bot's listen_to, collected by its PluginManager.
    [(pattern, [function])] = registry.plugin_manager.message_listeners.items()
    assert isinstance(function.plugin, DirectMessagePlugin) and function.direct_only
    assert pattern.pattern == registry.message_patterns[0]


async def test_a_direct_message_command_takes_the_same_pipeline_as_the_slash_command(sandbox, bot):
    typed = await sandbox.user("bob").command("town-square", "/incident help check")
    replies = await dm_bot(sandbox, "bob", "help check")
    # The same handler answers both; only the prefix of the usage line differs ("/incident " or none).
    assert typed.ephemeral and "/incident check" in typed.ephemeral[0]
    assert replies[0]["message"] == typed.ephemeral[0].replace("/incident ", "")
