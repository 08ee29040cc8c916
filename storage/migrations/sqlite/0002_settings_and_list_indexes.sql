-- Schema version 2: a key-value settings table (e.g. the telemetry diagnostic id)
-- and the indexes behind the filtered incident list and the playbook picker.

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX incidents_team_status_created ON incidents (team_id, status, created_at);
CREATE INDEX incidents_team_commander_created ON incidents (team_id, commander_id, created_at);
CREATE INDEX incidents_team_playbook_created ON incidents (team_id, playbook_id, created_at);
CREATE INDEX playbooks_team_title ON playbooks (team_id, title COLLATE NOCASE);
CREATE INDEX playbook_members_user ON playbook_members (user_id, playbook_id);
