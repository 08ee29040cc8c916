"""Who may see and change what (SPEC section 6), as pure functions.

Facts that only Mattermost knows (team membership, channel membership, system
admin role) are passed in by the caller; identity always comes from the
request Mattermost made, never from client-supplied text.

``can_*`` answer a question; ``require_*`` raise the error a user should see.
Things a user may not see are reported as NotFound so their existence does not
leak; things they can see but may not change give PermissionDenied.
"""

from __future__ import annotations

from enum import Enum

from .errors import COMMAND, NotFound, PermissionDenied
from .models import Actor, Incident, Playbook

PLAYBOOK_NOT_FOUND = f"Playbook not found. Type {COMMAND}playbook list to see the playbooks you can use."
INCIDENT_NOT_FOUND = f"Incident not found. Type {COMMAND}list to see the incidents you can view."


def can_view_incident(actor: Actor, incident: Incident, *, is_team_member: bool, is_channel_member: bool) -> bool:
    """System admins see every incident; team members see public ones; channel members see private ones."""
    if actor.is_system_admin:
        return True
    if is_channel_member:
        return True
    return is_team_member and incident.public


def can_modify_incident(actor: Actor, incident: Incident, *, is_channel_member: bool) -> bool:
    """Only members of the incident channel may change it (system admins too must join the channel)."""
    return is_channel_member


def require_view_incident(actor: Actor, incident: Incident, *, is_team_member: bool, is_channel_member: bool) -> None:
    """Raise NotFound unless the actor may see the incident."""
    if not can_view_incident(actor, incident, is_team_member=is_team_member, is_channel_member=is_channel_member):
        raise NotFound(INCIDENT_NOT_FOUND)


def require_modify_incident(actor: Actor, incident: Incident, *, is_team_member: bool, is_channel_member: bool) -> None:
    """Raise NotFound if the incident is hidden from the actor, PermissionDenied if it is only visible."""
    require_view_incident(actor, incident, is_team_member=is_team_member, is_channel_member=is_channel_member)
    if not can_modify_incident(actor, incident, is_channel_member=is_channel_member):
        raise PermissionDenied(
            f'Only members of the incident channel can change "{incident.name}". Join the channel first.'
        )


def can_use_playbook(actor: Actor, playbook: Playbook, *, is_team_member: bool) -> bool:
    """Playbook members of the playbook's team, and system admins, may see, edit, export,
    delete and start incidents with a playbook."""
    if actor.is_system_admin:
        return True
    return is_team_member and actor.user_id in playbook.member_ids


def require_use_playbook(actor: Actor, playbook: Playbook, *, is_team_member: bool) -> None:
    """Raise NotFound (never "forbidden") for non-members, as the spec asks."""
    if not can_use_playbook(actor, playbook, is_team_member=is_team_member):
        raise NotFound(PLAYBOOK_NOT_FOUND)


def can_see_team(actor: Actor, *, is_team_member: bool) -> bool:
    """Team-scoped data (playbook and incident lists) is for team members and system admins."""
    return actor.is_system_admin or is_team_member


class AnnounceRefusal(Enum):
    """Why an incident is not announced in a channel."""

    #: Missing, or private and not seen from inside: one answer, so nobody learns that it exists.
    UNSEEN = "unseen"
    #: A public channel the user is not in: announcements are posted only where the user could post.
    NOT_A_MEMBER = "not a member"


def announce_refusal(*, found: bool, public: bool, bot_is_member: bool,
                     user_is_member: bool | None) -> AnnounceRefusal | None:
    """Whether the incident may be announced in a channel for the user (None: it may).

    The user must be a member of the channel. The bot can check that only from inside the channel
    (Mattermost shows a channel's members to its members): it may join a public channel to look,
    but into a private channel it is not in it cannot look, so that channel, a missing one and a
    private one the user is not in get the same answer. ``user_is_member`` is None while unknown.
    """
    if not found or (not public and not bot_is_member):
        return AnnounceRefusal.UNSEEN
    if user_is_member is None or user_is_member:
        return None
    return AnnounceRefusal.NOT_A_MEMBER if public else AnnounceRefusal.UNSEEN


# -- status updates, reminders and followers (docs/status-updates.md) ---------------------------

def can_post_update(actor: Actor, incident: Incident, *, is_channel_member: bool) -> bool:
    """Any member of the incident channel may post a status update (like Playbooks' participants):
    the people doing the work can report it when the commander is busy; the update names its author."""
    return is_channel_member


def require_post_update(actor: Actor, incident: Incident, *, is_team_member: bool, is_channel_member: bool) -> None:
    """NotFound if the incident is hidden from the actor, PermissionDenied unless they are in its channel."""
    require_view_incident(actor, incident, is_team_member=is_team_member, is_channel_member=is_channel_member)
    if not can_post_update(actor, incident, is_channel_member=is_channel_member):
        raise PermissionDenied(
            f'Only members of the incident channel can post status updates of "{incident.name}".'
            " Join the channel first, or follow the incident to receive its updates."
        )


def can_request_update(actor: Actor, incident: Incident, *, is_channel_member: bool) -> bool:
    """Members of the incident channel may ask the commander for an update (a follower outside the
    channel may not: following gives no right to act on the incident)."""
    return is_channel_member


def require_request_update(actor: Actor, incident: Incident, *, is_team_member: bool,
                           is_channel_member: bool) -> None:
    """NotFound if hidden, PermissionDenied unless the actor is in the incident channel."""
    require_view_incident(actor, incident, is_team_member=is_team_member, is_channel_member=is_channel_member)
    if not can_request_update(actor, incident, is_channel_member=is_channel_member):
        raise PermissionDenied(
            f'Only members of the incident channel can request an update of "{incident.name}". Join the channel first.'
        )


def can_snooze_reminder(actor: Actor, incident: Incident, *, is_channel_member: bool) -> bool:
    """Only the commander snoozes their own reminder (still a member of the channel): anyone else
    silencing it would hide an overdue update from the person responsible for it."""
    return is_channel_member and actor.user_id == incident.commander_id


def require_snooze_reminder(actor: Actor, incident: Incident, *, is_team_member: bool,
                            is_channel_member: bool) -> None:
    """NotFound if hidden, PermissionDenied unless the actor is the incident's commander."""
    require_view_incident(actor, incident, is_team_member=is_team_member, is_channel_member=is_channel_member)
    if not can_snooze_reminder(actor, incident, is_channel_member=is_channel_member):
        raise PermissionDenied(
            f"Only the commander can snooze the update reminder. Post an update with {COMMAND}update,"
            f" or ask for one with {COMMAND}request-update."
        )


def can_follow_incident(actor: Actor, incident: Incident, *, is_team_member: bool, is_channel_member: bool) -> bool:
    """Whoever can see the incident (the rule of the incident list and of info) may follow it,
    including team members who are not in a public incident's channel. Checked again before each
    message to a follower: someone who can no longer see the incident is sent nothing."""
    return can_view_incident(actor, incident, is_team_member=is_team_member, is_channel_member=is_channel_member)


def require_follow_incident(actor: Actor, incident: Incident, *, is_team_member: bool,
                            is_channel_member: bool) -> None:
    """NotFound (never "forbidden") unless the actor may see the incident."""
    if not can_follow_incident(actor, incident, is_team_member=is_team_member, is_channel_member=is_channel_member):
        raise NotFound(INCIDENT_NOT_FOUND)


class BroadcastRefusal(Enum):
    """Why a status update is not copied to a channel (when configuring a playbook, and when sending)."""

    #: Missing, in another team, or private and not seen from inside: one answer, nothing leaks.
    UNSEEN = "unseen"
    #: Direct and group messages are not broadcast channels.
    NOT_A_TEAM_CHANNEL = "not a team channel"
    ARCHIVED = "archived"
    #: The editor (or the update's author, when sending) is not a member of the channel.
    NOT_A_MEMBER = "not a member"
    #: A member, but without the right to post there (a read-only or moderated channel).
    CANNOT_POST = "cannot post"


def broadcast_refusal(*, found: bool, same_team: bool, team_channel: bool, archived: bool, public: bool,
                      bot_is_member: bool, user_is_member: bool | None,
                      user_can_post: bool | None) -> BroadcastRefusal | None:
    """Whether status updates may go to a channel for this user (None: they may).

    The user is whoever configures the playbook, and again whoever posts each update: the bot
    never posts where that person could not post themselves. Visibility follows
    :func:`announce_refusal` (a private channel the bot is not in cannot be looked into);
    ``user_is_member`` / ``user_can_post`` are None while unknown (not yet asked).
    """
    if not found or not same_team:
        return BroadcastRefusal.UNSEEN
    if not team_channel:
        return BroadcastRefusal.NOT_A_TEAM_CHANNEL
    seen = announce_refusal(found=True, public=public, bot_is_member=bot_is_member, user_is_member=user_is_member)
    if seen is AnnounceRefusal.UNSEEN:
        return BroadcastRefusal.UNSEEN
    if seen is AnnounceRefusal.NOT_A_MEMBER:
        return BroadcastRefusal.NOT_A_MEMBER
    if archived:
        return BroadcastRefusal.ARCHIVED
    if user_can_post is False:
        return BroadcastRefusal.CANNOT_POST
    return None


# -- fields and the retrospective (issue 18) -------------------------------------------------------

def can_change_fields(actor: Actor, incident: Incident, *, is_channel_member: bool) -> bool:
    """Severity and custom fields are changed like a step is checked: by members of the incident
    channel (system admins too must join it), while it is ongoing (``domain.fields.set_field``)."""
    return can_modify_incident(actor, incident, is_channel_member=is_channel_member)


def can_manage_retro(actor: Actor, incident: Incident, *, is_channel_member: bool) -> bool:
    """The retrospective is published, or declined, by the commander or a system admin, from inside
    the channel (like every change): it speaks for the whole response."""
    return is_channel_member and (actor.user_id == incident.commander_id or actor.is_system_admin)


def require_manage_retro(actor: Actor, incident: Incident, *, is_team_member: bool, is_channel_member: bool) -> None:
    """NotFound if hidden, PermissionDenied unless the actor is the commander (or an admin) in the channel."""
    require_view_incident(actor, incident, is_team_member=is_team_member, is_channel_member=is_channel_member)
    if not can_manage_retro(actor, incident, is_channel_member=is_channel_member):
        if not is_channel_member:
            raise PermissionDenied(f'Only members of the incident channel can change "{incident.name}". '
                                   "Join the channel first.")
        raise PermissionDenied("Only the commander (or a system admin) can publish the retrospective or choose "
                               "to have none. Ask the commander, or become commander first.")
