-- PostgreSQL schema version 9: the name search of the incident list (issue 20).
--
-- name_folded is the name with ASCII letters folded (cc_fold: what SQLite's LIKE compares), kept by
-- the server itself; the search compares it with the folded term, so no row is folded while a list
-- is read. The list indexes carry it instead of the name (only the search read the name from them),
-- so a page still walks an index alone, and the order by name is on it; incidents_list_counts,
-- narrow, serves the team's counts.
--
-- incidents_name_trgm is a trigram index (pg_trgm) of each team's folded names: a term of three
-- characters or more may take its candidate rows from it, which the LIKE then checks; the team is a
-- column of the same GIN index (btree_gin), so only the team's candidates are read. Both extensions
-- ship with PostgreSQL (contrib; Debian's postgresql-15 package) and are trusted from PostgreSQL 13
-- on: a user with CREATE on the database (its owner, say) may create them without being a superuser
-- (IF NOT EXISTS: on 12, a superuser may have created them beforehand). fastupdate is off: a
-- write goes into the index itself, not into a pending list every search would read through and
-- some write would one day have to merge (a slow step toggle at random).
--
-- SQLite has no counterpart: it matches by reading its list index, as PostgreSQL still does for
-- shorter terms and for terms most names hold.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

ALTER TABLE incidents ADD COLUMN name_folded text COLLATE "C" GENERATED ALWAYS AS (cc_fold(name)) STORED;

DROP INDEX incidents_list;
CREATE INDEX incidents_list ON incidents (team_id, created_at, seq)
    INCLUDE (public, channel_id, status, commander_id, playbook_id, name_folded, id);
DROP INDEX incidents_list_status;
CREATE INDEX incidents_list_status ON incidents (team_id, status, created_at, seq)
    INCLUDE (public, channel_id, commander_id, playbook_id, name_folded, id);
DROP INDEX incidents_list_commander;
CREATE INDEX incidents_list_commander ON incidents (team_id, commander_id, created_at, seq)
    INCLUDE (public, channel_id, status, playbook_id, name_folded, id);
DROP INDEX incidents_list_playbook;
CREATE INDEX incidents_list_playbook ON incidents (team_id, playbook_id, created_at, seq)
    INCLUDE (public, channel_id, status, commander_id, name_folded, id);
DROP INDEX incidents_list_severity;
CREATE INDEX incidents_list_severity ON incidents
    (team_id, (field_values::jsonb ->> 'severity'), created_at, seq)
    INCLUDE (public, channel_id, status, commander_id, playbook_id, name_folded, id, field_values);
DROP INDEX incidents_list_fields;
CREATE INDEX incidents_list_fields ON incidents (team_id, created_at, seq)
    INCLUDE (public, channel_id, status, commander_id, playbook_id, name_folded, id, field_values)
    WHERE field_values <> '{}';

DROP INDEX incidents_list_name;
CREATE INDEX incidents_list_name ON incidents (team_id, name_folded, seq)
    INCLUDE (public, channel_id, status, commander_id, playbook_id, id);

CREATE INDEX incidents_list_counts ON incidents (team_id, public) INCLUDE (name_folded);

CREATE INDEX incidents_name_trgm ON incidents USING gin (team_id, name_folded gin_trgm_ops)
    WITH (fastupdate = off);
