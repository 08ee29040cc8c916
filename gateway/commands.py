"""Registers the slash command on every team the bot belongs to: create if missing, update if changed."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.client import MattermostClient
from gateway.errors import MattermostError
from gateway.ids import Route
from gateway.inbound import CommandTokens

log = logging.getLogger(__name__)

AUTOCOMPLETE_HINT = "[start|end|restart|commander|stage|check|uncheck|assign|run|step|info|list|export|announce|playbook|help]"
AUTOCOMPLETE_DESC = "Run incidents: start one, lead it, work its checklist, look back at past ones."


@dataclass
class RegistrationResult:
    team_id: str
    team_name: str
    outcome: str  # "created" | "updated" | "unchanged" | "failed: ..."


def desired_command(team_id: str, trigger: str, callback_base_url: str) -> dict:
    """The command definition the bot wants on a team."""
    return {
        "team_id": team_id,
        "trigger": trigger,
        "method": "P",
        "url": callback_base_url.rstrip("/") + Route.COMMAND.value,
        "auto_complete": True,
        "auto_complete_desc": AUTOCOMPLETE_DESC,
        "auto_complete_hint": AUTOCOMPLETE_HINT,
        "display_name": "Command Center",
        "description": "Incident response from chat",
        "username": "",
        "icon_url": "",
    }


def _differs(existing: dict, desired: dict) -> bool:
    return any(existing.get(key) != value for key, value in desired.items())


async def register_commands(client: MattermostClient, trigger: str, callback_base_url: str,
                            tokens: CommandTokens) -> list[RegistrationResult]:
    """Make sure ``/<trigger>`` exists exactly once per team, pointing at this bot; learn its tokens.

    A team where registration fails (the bot lacks the team-admin role, say) is reported and
    skipped: commands there will be refused until an administrator fixes the permission.
    """
    results = []
    for team in await client.my_teams():
        team_id, team_name = team.id, team.name or team.id
        desired = desired_command(team_id, trigger, callback_base_url)
        try:
            existing = [c for c in await client.list_commands(team_id)
                        if c.get("trigger") == trigger and not c.get("delete_at")]
            if not existing:
                created = await client.create_command(desired)
                tokens.set(team_id, created["token"])
                outcome = "created"
            else:
                # Mattermost keeps triggers unique per team, so there is at most one to adopt.
                command = existing[0]
                if _differs(command, desired):
                    command = await client.update_command(command["id"], {**command, **desired})
                    outcome = "updated"
                else:
                    outcome = "unchanged"
                tokens.set(team_id, command["token"])
        except MattermostError as error:
            outcome = f"failed: {error.status} {error.error_id}"
            log.error("cannot register /%s on team %s: %s. Give the bot account the team admin role "
                      "(or system admin) and make sure custom slash commands are enabled.",
                      trigger, team_name, error.message)
        log.info("slash command /%s on team %s: %s", trigger, team_name, outcome)
        results.append(RegistrationResult(team_id, team_name, outcome))
    return results
