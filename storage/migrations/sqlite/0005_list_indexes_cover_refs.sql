-- Schema version 5: the list indexes also hold the incident id, so the light references
-- the list walks (id, team, channel, visibility: Store.list_incident_refs) are read from
-- the index alone, never from table rows (whose checklist document fills a page each).
-- The columns before id are unchanged, so every plan the list used stays as it was.

DROP INDEX incidents_list;
CREATE INDEX incidents_list ON incidents
    (team_id, created_at, public, channel_id, status, commander_id, playbook_id, ended_at, name, id);
DROP INDEX incidents_list_status;
CREATE INDEX incidents_list_status ON incidents
    (team_id, status, created_at, public, channel_id, commander_id, playbook_id, id);
DROP INDEX incidents_list_commander;
CREATE INDEX incidents_list_commander ON incidents
    (team_id, commander_id, created_at, public, channel_id, status, id);
DROP INDEX incidents_list_name;
CREATE INDEX incidents_list_name ON incidents
    (team_id, name COLLATE NOCASE, public, channel_id, status, id);
DROP INDEX incidents_list_playbook;
CREATE INDEX incidents_list_playbook ON incidents
    (team_id, playbook_id, created_at, public, channel_id, status, id);
