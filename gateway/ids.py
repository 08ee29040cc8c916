"""Every route, button action and dialog the bot knows, as enum members (never bare strings)."""

from enum import StrEnum


class Route(StrEnum):
    """HTTP routes of the bot's own server, called by Mattermost (anchored, exact paths)."""

    COMMAND = "/mattermost/command"
    ACTION = "/mattermost/action"
    DIALOG = "/mattermost/dialog"
    HEALTH = "/healthz"
    # Alerts from monitoring (README "Alerts"), called by Alertmanager, Grafana or anything else
    ALERTS_ALERTMANAGER = "/alerts/alertmanager"
    ALERTS_GRAFANA = "/alerts/grafana"
    ALERTS_GENERIC = "/alerts/generic"


#: Where the backstage's pages and its REST API are served on the bot's server (issue 19, backstage/).
BACKSTAGE_PREFIX = "/backstage"
API_PREFIX = "/api/v1"


def incident_page_url(base_url: str, incident_id: str) -> str:
    """The backstage page of an incident, for links from the card and replies in chat."""
    return f"{base_url}{BACKSTAGE_PREFIX}/incidents/{incident_id}"


class Action(StrEnum):
    """Button and menu actions on the bot's posts (alphanumeric: Mattermost's action-id rule)."""

    SHOW_HELP = "showhelp"
    # Incident card
    CHECK = "check"
    UNCHECK = "uncheck"
    RUN = "run"
    ASSIGN = "assign"
    STEP_DETAILS = "stepdetails"
    PREV_STAGE = "prevstage"
    NEXT_STAGE = "nextstage"
    COMMANDER = "commander"
    END = "end"
    RESTART = "restart"
    VIEW_STAGE = "viewstage"
    SET_STAGE = "setstage"
    # Starting
    START = "start"
    START_FROM_POST = "startfrompost"
    # Playbooks
    PLAYBOOK_CREATE = "playbookcreate"
    PLAYBOOK_EDIT = "playbookedit"
    PLAYBOOK_DELETE = "playbookdelete"
    PLAYBOOK_EXPORT = "playbookexport"
    # Incident list paging
    LIST_PAGE = "listpage"
    # Status updates, reminders and followers (issue 17; docs/status-updates.md)
    POST_UPDATE = "postupdate"
    SNOOZE_REMINDER = "snoozereminder"
    REQUEST_UPDATE = "requestupdate"
    FOLLOW = "follow"
    UNFOLLOW = "unfollow"
    PLAYBOOK_SETTINGS = "playbooksettings"
    # Alerts: the Start incident button of a suggestion post (README "Alerts")
    START_FROM_ALERT = "startfromalert"
    # Severity, custom fields and the retrospective (issue 18)
    SET_SEVERITY = "setseverity"
    EDIT_FIELDS = "editfields"
    WRITE_RETRO = "writeretro"
    SKIP_RETRO = "skipretro"


class Dialog(StrEnum):
    """Dialog callback ids."""

    NONE = "none"
    # Incidents
    START = "start"
    END = "end"
    RESTART = "restart"
    COMMANDER = "commander"
    ASSIGN = "assign"
    # Playbooks
    PLAYBOOK_CREATE = "playbookcreate"
    PLAYBOOK_EDIT = "playbookedit"
    PLAYBOOK_STEP = "playbookstep"
    PLAYBOOK_DELETE = "playbookdelete"
    PLAYBOOK_IMPORT = "playbookimport"
    PLAYBOOK_SETTINGS = "playbooksettings"
    # Status updates
    UPDATE = "update"
    # Fields and the retrospective (issue 18)
    FIELDS = "fields"
    RETRO = "retro"
