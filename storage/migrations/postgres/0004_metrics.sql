-- PostgreSQL schema version 4: the metrics summary per incident (as SQLite's 0011_metrics.sql;
-- docs/metrics.md). The store advances it in the same transaction as every timeline event it
-- records; incidents recorded before this version get theirs when the store opens (backfill_metrics).

CREATE TABLE incident_metrics (
    incident_id text COLLATE "C" PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    team_id     text COLLATE "C" NOT NULL,
    playbook_id text COLLATE "C",
    channel_id  text COLLATE "C" NOT NULL,
    public      integer NOT NULL,
    severity    text COLLATE "C",
    created_at  bigint NOT NULL,
    resolve_ms  bigint,
    summary     text COLLATE "C" NOT NULL
);

-- Every column stats read is in the index: an index-only scan in the team's time order.
CREATE INDEX incident_metrics_stats ON incident_metrics (team_id, created_at)
    INCLUDE (incident_id, playbook_id, public, channel_id, severity, resolve_ms);
