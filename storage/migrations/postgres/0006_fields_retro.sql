-- PostgreSQL schema version 6: severity, custom fields and the retrospective (as SQLite's
-- 0013_fields_retro.sql; issue 18). Same columns; fields NULL means the default severity field.
--
-- The list filters by field value. Severity, which every incident has, is indexed by the very
-- expression the store's filter writes ((field_values::jsonb ->> 'severity')), with the order and
-- every column the other terms read: "severity=SEV1" walks only the team's incidents of that
-- severity, newest first, from the index. Any other field is read from incidents_list_fields, a
-- partial index of the incidents that have a value (the filter repeats its term).
-- The list generation must move when a value changes: its update trigger is made again with
-- field_values among its columns.

ALTER TABLE playbooks ADD COLUMN fields text COLLATE "C";
ALTER TABLE playbooks ADD COLUMN retro text COLLATE "C" NOT NULL DEFAULT '{}';

ALTER TABLE incidents ADD COLUMN fields text COLLATE "C";
ALTER TABLE incidents ADD COLUMN field_values text COLLATE "C" NOT NULL DEFAULT '{}';
ALTER TABLE incidents ADD COLUMN retro text COLLATE "C" NOT NULL DEFAULT '{}';
ALTER TABLE incidents ADD COLUMN retro_status text COLLATE "C"
    CHECK (retro_status IS NULL OR retro_status IN ('pending', 'published', 'skipped'));
ALTER TABLE incidents ADD COLUMN retro_text text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN retro_published_at bigint;
ALTER TABLE incidents ADD COLUMN retro_by text COLLATE "C";

CREATE INDEX incidents_list_severity ON incidents
    (team_id, (field_values::jsonb ->> 'severity'), created_at, seq)
    INCLUDE (public, channel_id, status, commander_id, playbook_id, name, id, field_values);

CREATE INDEX incidents_list_fields ON incidents (team_id, created_at, seq)
    INCLUDE (public, channel_id, status, commander_id, playbook_id, name, id, field_values)
    WHERE field_values <> '{}';

DROP TRIGGER incidents_list_generation_update ON incidents;

CREATE CONSTRAINT TRIGGER incidents_list_generation_update
    AFTER UPDATE OF team_id, channel_id, name, commander_id, playbook_id, status, public, field_values ON incidents
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cc_bump_list_generation();
