-- Schema version 7: scheduled jobs (reminders and the like; storage/jobs.py, services/scheduler.py).
-- One row per job; finished rows (done, cancelled, failed) are kept for a while, then pruned.
-- A partial unique index keeps one pending job per (kind, key): scheduling a key again cancels
-- the pending one first. The claim reads the two partial indexes (pending by due time, claimed by
-- lease expiry), so it and "when is the next job" cost no scan however many jobs have finished.
-- No foreign key to incidents: a job of a deleted incident is cancelled when it comes due.

CREATE TABLE jobs (
    id                  TEXT PRIMARY KEY,
    kind                TEXT NOT NULL,
    key                 TEXT NOT NULL,
    incident_id         TEXT,
    due_at              INTEGER NOT NULL,
    payload             TEXT NOT NULL DEFAULT '{}',
    state               TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'claimed', 'done', 'cancelled', 'failed')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    claimed_by          TEXT,
    token               TEXT,
    lease_until         INTEGER,
    delivery_started_at INTEGER,
    fired_at            INTEGER,
    finished_at         INTEGER,
    late                INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    last_error          TEXT
);

CREATE UNIQUE INDEX jobs_pending_key ON jobs (kind, key) WHERE state = 'pending';
CREATE INDEX jobs_pending_due ON jobs (due_at, kind) WHERE state = 'pending';
CREATE INDEX jobs_claimed_lease ON jobs (lease_until, kind) WHERE state = 'claimed';
CREATE INDEX jobs_live_incident ON jobs (incident_id) WHERE state IN ('pending', 'claimed');
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('done', 'cancelled', 'failed');
