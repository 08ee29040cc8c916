-- PostgreSQL schema version 8: the name search of the incident list served by an index (issue 20).
-- A trigram index (pg_trgm) of each team's folded names: a search term of three characters or more
-- takes its candidate rows from it, which the LIKE then checks; the team is a column of the same
-- GIN index (btree_gin), so only the team's candidates are read. Both extensions ship with
-- PostgreSQL (contrib; Debian's postgresql-15 package) and are trusted: a user with CREATE on the
-- database (its owner, say) may create them without being a superuser. SQLite has no counterpart: it matches by reading its list index, as PostgreSQL still
-- does for shorter terms and for terms most names hold.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- fastupdate off: a write goes into the index itself, not into a pending list every search would
-- read through and some write would one day have to merge (a slow step toggle at random).
CREATE INDEX incidents_name_trgm ON incidents USING gin (team_id, cc_fold(name) gin_trgm_ops)
    WITH (fastupdate = off);
