-- Schema version 10: severity, custom fields and the retrospective (issue 18).
-- Playbooks: their field definitions (JSON array; NULL, every playbook stored before this version,
-- means the default single severity field SEV1-SEV4) and their retrospective settings (template,
-- reminder interval). Incidents: their own copy of both, the values set (JSON object by field id),
-- and where the retrospective stands (NULL until the end; pending, published, skipped), its text,
-- when and by whom it was published.
--
-- The list filters by field value. Severity, the one field every incident has, is indexed by
-- its expression (the store's filter writes exactly json_extract(field_values, '$.severity')), so
-- "severity=SEV1" walks only the team's incidents of that severity, newest first, from the index,
-- which also holds what the other terms read (a covering index: no table row is read, neither for
-- the page nor for its count). Other fields: see incidents_list_fields below.
-- The list counters of migration 0009 must move when a value changes (a cached count of
-- "severity=SEV1" would otherwise outlive the change): the update trigger is made again with
-- field_values among its columns.

ALTER TABLE playbooks ADD COLUMN fields TEXT CHECK (fields IS NULL OR json_valid(fields));
ALTER TABLE playbooks ADD COLUMN retro TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(retro));

ALTER TABLE incidents ADD COLUMN fields TEXT CHECK (fields IS NULL OR json_valid(fields));
ALTER TABLE incidents ADD COLUMN field_values TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(field_values));
ALTER TABLE incidents ADD COLUMN retro TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(retro));
ALTER TABLE incidents ADD COLUMN retro_status TEXT
    CHECK (retro_status IS NULL OR retro_status IN ('pending', 'published', 'skipped'));
ALTER TABLE incidents ADD COLUMN retro_text TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN retro_published_at INTEGER;
ALTER TABLE incidents ADD COLUMN retro_by TEXT;

CREATE INDEX incidents_list_severity ON incidents
    (team_id, json_extract(field_values, '$.severity'), created_at, public, channel_id, status, id, field_values);

DROP TRIGGER incidents_list_generation_update;

CREATE TRIGGER incidents_list_generation_update
AFTER UPDATE OF team_id, channel_id, name, commander_id, playbook_id, status, public, field_values ON incidents
BEGIN
    INSERT INTO list_generations (team_id, n) VALUES (OLD.team_id, 1)
        ON CONFLICT (team_id) DO UPDATE SET n = n + 1;
    INSERT INTO list_generations (team_id, n) SELECT NEW.team_id, 1 WHERE NEW.team_id IS NOT OLD.team_id
        ON CONFLICT (team_id) DO UPDATE SET n = n + 1;
END;

-- Any other field (field:customer=ACME) has no index of its own; this one holds the values with what
-- the list's other terms and order read, so its page and its count never read a table row (whose
-- checklist document spans several pages): only incidents with a value are in it, and the filter
-- repeats that term (field_values <> '{}') so the planner may use it.
CREATE INDEX incidents_list_fields ON incidents
    (team_id, created_at, public, channel_id, status, field_values)
    WHERE field_values <> '{}';
