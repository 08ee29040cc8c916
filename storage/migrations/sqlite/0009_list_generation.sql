-- Schema version 9: counters of changes to what the incident list counts, per team (issue 15, list p99).
-- Counting a team's matching incidents walks every index entry of the team (≈1 ms at 10,000
-- per team) and was most of a list page's cost. The store keeps the counts it computed together
-- with the team's counter and reuses one while the counter has not moved. Triggers move it on
-- every insert and delete of an incident, and on every update that writes a column a list filter
-- or the visibility test reads (team, channel, name, commander, playbook, status, public) — in
-- any process, so a count cached by one store is never trusted after another one's write. A team
-- without a row has counter 0; rows are never deleted, so a counter never goes back.
-- Checklist edits write none of these columns (updates write only what changed), so toggles
-- leave the counters, and the cached counts, alone. Overdue lists are never cached (their
-- parameter is "now"), so next_update_due_at does not move them.
--
-- incidents_channel_list: a viewer's own private incidents are counted by channel, one lookup per
-- channel the viewer is in; this index holds what the filters read, so no lookup reads a table row.

CREATE TABLE list_generations (
    team_id TEXT PRIMARY KEY,
    n       INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER incidents_list_generation_insert AFTER INSERT ON incidents
BEGIN
    INSERT INTO list_generations (team_id, n) VALUES (NEW.team_id, 1)
        ON CONFLICT (team_id) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER incidents_list_generation_delete AFTER DELETE ON incidents
BEGIN
    INSERT INTO list_generations (team_id, n) VALUES (OLD.team_id, 1)
        ON CONFLICT (team_id) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER incidents_list_generation_update
AFTER UPDATE OF team_id, channel_id, name, commander_id, playbook_id, status, public ON incidents
BEGIN
    INSERT INTO list_generations (team_id, n) VALUES (OLD.team_id, 1)
        ON CONFLICT (team_id) DO UPDATE SET n = n + 1;
    INSERT INTO list_generations (team_id, n) SELECT NEW.team_id, 1 WHERE NEW.team_id IS NOT OLD.team_id
        ON CONFLICT (team_id) DO UPDATE SET n = n + 1;
END;

CREATE INDEX incidents_channel_list ON incidents
    (channel_id, team_id, public, status, commander_id, playbook_id, name COLLATE NOCASE);
