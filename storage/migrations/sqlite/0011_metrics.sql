-- Schema version 10: a small metrics summary per incident (issue 18, docs/metrics.md).
-- The store advances it in the same transaction as every timeline event it records
-- (domain/metrics.py ``advance``), so stats over thousands of incidents read one short index
-- entry each and never their events. ``summary`` is the fold's state (JSON); the columns beside
-- it are what stats select and group by: the team and start time (the period), the playbook, the
-- severity, who may see it (public, channel) and the time to resolve (NULL while ongoing).
-- Incidents recorded before this version get theirs when the store opens (computed once from
-- their events: ``Store.backfill_metrics``).

CREATE TABLE incident_metrics (
    incident_id TEXT PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    team_id     TEXT NOT NULL,
    playbook_id TEXT,
    channel_id  TEXT NOT NULL,
    public      INTEGER NOT NULL,
    severity    TEXT,
    created_at  INTEGER NOT NULL,
    resolve_ms  INTEGER,
    summary     TEXT NOT NULL CHECK (json_valid(summary))
) WITHOUT ROWID;

CREATE INDEX incident_metrics_stats ON incident_metrics
    (team_id, created_at, playbook_id, public, channel_id, severity, resolve_ms);
