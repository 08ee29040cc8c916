-- Schema version 9: a counter of changes to what the incident list counts (issue 15, list p99).
-- Counting a team's matching incidents walks every index entry of the team (≈1 ms at 10,000
-- per team) and was most of a list page's cost. The store keeps the counts it computed together
-- with this counter and reuses one while the counter has not moved. Triggers move it on every
-- insert and delete of an incident, and on every update that writes a column a list filter or
-- the visibility test reads (team, channel, name, commander, playbook, status, public) — in
-- any process, so a count cached by one store is never trusted after another one's write.
-- Checklist edits write none of these columns (updates write only what changed), so toggles
-- leave the counter, and the cached counts, alone. Overdue lists are never cached (their
-- parameter is "now"), so next_update_due_at does not move it.

CREATE TABLE list_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO list_generation (id, n) VALUES (1, 0);

CREATE TRIGGER incidents_list_generation_insert AFTER INSERT ON incidents
BEGIN
    UPDATE list_generation SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER incidents_list_generation_delete AFTER DELETE ON incidents
BEGIN
    UPDATE list_generation SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER incidents_list_generation_update
AFTER UPDATE OF team_id, channel_id, name, commander_id, playbook_id, status, public ON incidents
BEGIN
    UPDATE list_generation SET n = n + 1 WHERE id = 1;
END;
