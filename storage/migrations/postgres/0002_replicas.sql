-- PostgreSQL schema version 2: leases for several bot replicas on one database (as SQLite's 0010_replicas.sql;
-- docs/replicas.md). Every change is one compare-and-set statement (INSERT ... ON CONFLICT ... WHERE).

CREATE TABLE leases (
    name       text COLLATE "C" PRIMARY KEY,
    holder     text COLLATE "C" NOT NULL,
    epoch      bigint NOT NULL,
    expires_at bigint NOT NULL
);
