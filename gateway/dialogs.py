"""The bot's dialog elements (protocol.md §3), built with gateway/ui.py: what may be cut is cut here.

The builders refuse what Mattermost would (gateway/ui.py); these helpers make the bot's own
choices first — an option's label on one line within 150 characters, a default within the
element's ``max_length``, help text within the server's 150 bytes.
"""

from __future__ import annotations

from domain import limits
from domain.webhooks import WEBHOOKS_MAX
from gateway import ui

OPTION_TEXT_MAX = 150


def _cut(text: str, limit: int, characters: int | None = None) -> str:
    """``text`` within ``characters`` (default ``limit``) characters and ``limit`` UTF-8 bytes (the
    server counts bytes)."""
    return ui.fit_title(text[:limit if characters is None else characters], limit)


def select(name: str, display_name: str, options: list[tuple[str, str]], *, default: str | None = None,
           help_text: str = "", optional: bool = False) -> ui.Select:
    """A static select; a ``default`` that is not among the options (a commander who left the
    channel) is left out, as the server refuses it."""
    choices = tuple(ui.Option.shortened(text, value, OPTION_TEXT_MAX) for text, value in options)
    chosen = default if default and default in {option.value for option in choices} else ""
    return ui.Select(name, display_name, help_text=_cut(help_text, ui.ELEMENT_HELP_TEXT_MAX), optional=optional,
                     options=choices, default=chosen)


def text(name: str, display_name: str, *, default: str = "", placeholder: str = "", help_text: str = "",
         optional: bool = False, min_length: int = 0, max_length: int = ui.TEXT_INPUT_MAX,
         textarea: bool = False) -> ui.Text:
    kind = ui.TextArea if textarea else ui.Text
    limit = ui.TEXTAREA_MAX if textarea else ui.TEXT_MAX
    return kind(name, display_name, help_text=_cut(help_text, ui.ELEMENT_HELP_TEXT_MAX), optional=optional,
                default=_cut(default, limit, max_length), placeholder=_cut(placeholder, limit),
                min_length=min_length, max_length=max_length)


def start_incident_elements(playbooks: list[tuple[str, str]], name: str, *, description: str = "",
                            playbook_id: str | None = None) -> tuple[ui.Element, ...]:
    """Playbook (sorted by title), name (2–64), optional description; ``playbook_id`` is chosen when
    it is one of ``playbooks`` (an alert's rule names it)."""
    chosen = playbook_id if playbook_id in {value for _, value in playbooks} else None
    return (
        select("playbook", "Playbook", playbooks,
               default=chosen or (playbooks[0][1] if len(playbooks) == 1 else None),
               help_text="The checklist this incident follows."),
        text("name", "Incident name", default=name, placeholder="e.g. Checkout errors in EU",
             min_length=limits.INCIDENT_NAME_MIN, max_length=limits.INCIDENT_NAME_MAX,
             help_text=f"{limits.INCIDENT_NAME_MIN}–{limits.INCIDENT_NAME_MAX} characters; also the channel name."),
        text("description", "Description", optional=True, textarea=True, max_length=limits.INCIDENT_DESCRIPTION_MAX,
             placeholder="What is happening? Who is affected?", default=description),
    )


def update_elements(choices: list[tuple[str, str]], template: str) -> tuple[ui.Element, ...]:
    """The status update dialog: the text (prefilled from the incident's update template) and
    "next update in" (``choices``: value/label pairs, the incident's default first)."""
    return (
        text("text", "Update", default=template, textarea=True, min_length=1, max_length=limits.UPDATE_TEXT_MAX,
             placeholder="What changed, what is being done, what happens next?",
             help_text="Markdown. Posted in the incident channel, its broadcast channels and to its followers."),
        select("next_in", "Next update in", [(label, value) for value, label in choices],
               default=choices[0][0] if choices else None, help_text="When the commander is reminded next."),
    )


def end_incident_elements() -> tuple[ui.Element, ...]:
    """The end confirmation: an optional final update, posted and sent like any update."""
    return (
        text("final_update", "Final update", optional=True, textarea=True, max_length=limits.UPDATE_TEXT_MAX,
             placeholder="Optional: how it was resolved, what happens next.",
             help_text="Posted as the last status update, to the broadcast channels and the followers."),
    )


#: The settings dialog's elements by setting; a field the dialog cannot hold (a template longer than a
#: textarea) is left out, and then left unchanged on submission.
SETTINGS_TEXTAREA_MAX = ui.TEXTAREA_MAX


def playbook_settings_elements(*, broadcast: str, interval: str, template: str | None, reminders: str,
                               invite: str, commander: str, followers: str,
                               webhooks: str = "") -> tuple[ui.Element, ...]:
    """The playbook settings dialog (docs/status-updates.md, "Playbook settings").

    Several channels and people are typed as ``~name`` / ``@name`` lists: a select takes one value
    in Mattermost 11.7's interactive dialogs (``data_source: channels`` picks one channel); selecting
    several exists only in the Apps Form adapter behind the ``InteractiveDialogAppsForm`` feature
    flag, so the bot does not rely on it."""
    elements: list[ui.Element] = [
        text("broadcast", "Broadcast channels", default=broadcast, optional=True, textarea=True,
             max_length=SETTINGS_TEXTAREA_MAX, placeholder="~ops-status ~leadership",
             help_text=f"Up to {limits.BROADCAST_CHANNELS_MAX} channels of this team where you can post; every "
                       "status update is copied there."),
        text("interval", "Default update interval", default=interval, optional=True, max_length=24,
             placeholder="1h", help_text="When the next update is due by default: 15m, 30m, 1h, 4h, 1h30m… "
                                         "or none (no reminders unless an update asks for one)."),
    ]
    if template is not None:
        elements.append(text("template", "Update template", default=template, optional=True, textarea=True,
                             max_length=SETTINGS_TEXTAREA_MAX, placeholder="**Impact:**\n**Next steps:**",
                             help_text="Markdown that prefills every status update."))
    elements += [
        select("reminders", "Reminders", [("In the incident channel and by direct message", "both"),
                                          ("In the incident channel, mentioning the commander", "channel"),
                                          ("By direct message to the commander", "dm")],
               default=reminders, help_text="Where the commander is reminded that an update is due."),
        text("invite", "Invite at start", default=invite, optional=True, textarea=True,
             max_length=SETTINGS_TEXTAREA_MAX, placeholder="@alice @bob",
             help_text=f"Up to {limits.PLAYBOOK_INVITED_MAX} team members added to every new incident channel."),
        text("commander", "Default commander", default=commander, optional=True, max_length=65,
             placeholder="@alice", help_text="Commands every new incident; empty: whoever starts it."),
        text("followers", "Followers", default=followers, optional=True, textarea=True,
             max_length=SETTINGS_TEXTAREA_MAX, placeholder="@carol",
             help_text=f"Up to {limits.PLAYBOOK_FOLLOWERS_MAX} people who follow every incident started from it."),
        text("webhooks", "Webhooks", default=webhooks, optional=True, textarea=True,
             max_length=SETTINGS_TEXTAREA_MAX, placeholder="https://hooks.example.com/cc created ended",
             help_text=f"Up to {WEBHOOKS_MAX} URLs, one per line, each followed by the events it gets (created, "
                       "status_update, commander_changed, ended, restarted, retro_published; none: all). "
                       "A new URL's signing secret is sent to you once (docs/webhooks.md)."),
    ]
    return tuple(elements)
