"""Every size limit of the domain, in one place."""

from __future__ import annotations

INCIDENT_NAME_MIN = 2
INCIDENT_NAME_MAX = 64
INCIDENT_DESCRIPTION_MAX = 4000

PLAYBOOK_TITLE_MIN = 1
PLAYBOOK_TITLE_MAX = 64
PLAYBOOK_DESCRIPTION_MAX = 4000
PLAYBOOK_MEMBERS_MAX = 1000

STAGE_TITLE_MIN = 1
STAGE_TITLE_MAX = 64
STAGES_MIN = 1
STAGES_MAX = 20

STEP_TITLE_MIN = 1
STEP_TITLE_MAX = 256
STEP_DESCRIPTION_MAX = 4000
STEP_COMMAND_MAX = 512
STEPS_PER_STAGE_MAX = 50

#: Largest page the incident list serves.
LIST_PER_PAGE_MAX = 100

#: Mattermost refuses a post whose message has more than this many runes (code points):
#: ``model.PostMessageMaxRunesV2``.
POST_MESSAGE_MAX = 16383
#: A status update's text: room is left for the header and footer the bot adds (incident name,
#: author, next due time), so the posted update always fits one Mattermost post.
UPDATE_TEXT_MAX = 16000
#: A playbook's update template prefills the update text, so it has the same limit.
UPDATE_TEMPLATE_MAX = UPDATE_TEXT_MAX
#: "Next update in": whole minutes, from one minute to one week.
UPDATE_INTERVAL_MIN_MS = 60_000
UPDATE_INTERVAL_MAX_MS = 7 * 24 * 3_600_000
#: Channels one update is copied to (each is one more post, checked per sender, per update).
BROADCAST_CHANNELS_MAX = 10
#: Users a playbook adds to every new incident channel, and users it makes follow every incident.
PLAYBOOK_INVITED_MAX = 100
PLAYBOOK_FOLLOWERS_MAX = 100
#: Followers of one incident (each update, end and restart is one DM per follower).
INCIDENT_FOLLOWERS_MAX = 200
#: How long a reminder is snoozed, and how soon after a request another one is refused.
SNOOZE_MS = 15 * 60_000
REQUEST_UPDATE_COOLDOWN_MS = 5 * 60_000

#: The timeline (issue 18): events a page of the ``timeline`` command shows; characters of a post kept in
#: its timeline entry (the permalink leads to the rest); characters of the note ``timeline add`` takes.
TIMELINE_PER_PAGE = 25
TIMELINE_EXCERPT_MAX = 200
TIMELINE_NOTE_MAX = 300
#: Custom fields of a playbook (issue 18): how many, their names, ids, options and values.
#: A card shows every set field on one line, so these keep that line short.
FIELDS_MAX = 10
FIELD_NAME_MAX = 24
FIELD_ID_MAX = 32
FIELD_DESCRIPTION_MAX = 150
FIELD_OPTIONS_MAX = 20
FIELD_OPTION_MAX = 40
FIELD_TEXT_MAX = 150
#: The retrospective: its template prefills the text, which is posted as one message with a
#: header; room is left for the header and the key figures.
RETRO_TEXT_MAX = 15000
RETRO_TEMPLATE_MAX = 2500
#: How long after the end the commander is reminded to write it: one minute to 30 days.
RETRO_REMINDER_MIN_MS = 60_000
RETRO_REMINDER_MAX_MS = 30 * 24 * 3_600_000
