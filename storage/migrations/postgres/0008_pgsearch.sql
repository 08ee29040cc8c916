-- PostgreSQL schema version 8: the name search of the incident list served by an index (issue 20).
-- A trigram index (pg_trgm) of each team's folded names: a search term of three characters or more
-- takes its candidate rows from it, which the LIKE then checks; the team is a column of the same
-- GIN index (btree_gin), so only the team's candidates are read. Both extensions ship with
-- PostgreSQL (contrib) and are trusted: the database's owner may create them without being a
-- superuser. SQLite has no counterpart: it matches by reading its list index, as PostgreSQL still
-- does for shorter terms and for terms most names hold.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE INDEX incidents_name_trgm ON incidents USING gin (team_id, cc_fold(name) gin_trgm_ops);
