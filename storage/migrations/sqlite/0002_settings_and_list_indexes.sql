-- Schema version 2: a key-value settings table (e.g. the telemetry diagnostic id)
-- and the indexes behind the incident list and the playbook picker.
--
-- The list indexes are covering for the visibility test (public, channel_id) and the
-- filters, so counting and paging a team's incidents never reads the table rows;
-- only the page's rows are fetched. Each starts with team_id and one optional
-- equality filter, then created_at for the default newest-first order.

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

DROP INDEX incidents_team_created;

CREATE INDEX incidents_list ON incidents
    (team_id, created_at, public, channel_id, status, commander_id, playbook_id, ended_at, name);
CREATE INDEX incidents_list_status ON incidents
    (team_id, status, created_at, public, channel_id, commander_id, playbook_id);
CREATE INDEX incidents_list_commander ON incidents
    (team_id, commander_id, created_at, public, channel_id, status);
CREATE INDEX incidents_list_name ON incidents
    (team_id, name COLLATE NOCASE, public, channel_id, status);
CREATE INDEX incidents_list_playbook ON incidents
    (team_id, playbook_id, created_at, public, channel_id, status);

CREATE INDEX playbooks_team_title ON playbooks (team_id, title COLLATE NOCASE);
CREATE INDEX playbook_members_user ON playbook_members (user_id, playbook_id);
