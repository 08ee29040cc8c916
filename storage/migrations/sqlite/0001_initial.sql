-- Schema version 1: playbooks, their members, incidents and their timelines.
-- Stages and steps are stored as one JSON document per playbook / incident so that
-- every checklist change is a single-row update (atomic, and cheap to version).
-- The JSON is the last column: SQLite keeps a row's first bytes on the b-tree page
-- and the rest in overflow pages, so the small columns stay cheap to read.

CREATE TABLE playbooks (
    id                    TEXT PRIMARY KEY,
    team_id               TEXT NOT NULL,
    title                 TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    create_public_channel INTEGER NOT NULL CHECK (create_public_channel IN (0, 1)),
    created_by            TEXT NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    version               INTEGER NOT NULL,
    stages                TEXT NOT NULL CHECK (json_valid(stages))
);

CREATE TABLE playbook_members (
    playbook_id TEXT NOT NULL REFERENCES playbooks (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (playbook_id, user_id)
) WITHOUT ROWID;

-- playbook_id deliberately has no foreign key: deleting a playbook keeps its incidents.
CREATE TABLE incidents (
    id             TEXT PRIMARY KEY,
    team_id        TEXT NOT NULL,
    channel_id     TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    commander_id   TEXT NOT NULL,
    creator_id     TEXT NOT NULL,
    playbook_id    TEXT,
    playbook_title TEXT NOT NULL DEFAULT '',
    active_stage   INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL CHECK (status IN ('ongoing', 'ended')),
    created_at     INTEGER NOT NULL,
    ended_at       INTEGER,
    source_post_id TEXT,
    card_post_id   TEXT,
    public         INTEGER NOT NULL CHECK (public IN (0, 1)),
    version        INTEGER NOT NULL,
    stages         TEXT NOT NULL CHECK (json_valid(stages))
);

CREATE INDEX incidents_team_created ON incidents (team_id, created_at);

-- seq gives the order events were appended in (several may share a millisecond).
CREATE TABLE timeline_events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    details     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details))
);

CREATE INDEX timeline_events_incident ON timeline_events (incident_id, seq);
