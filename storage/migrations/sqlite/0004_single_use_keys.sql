-- Schema version 4: single-use keys (dialog nonces, Mattermost trigger ids) are remembered
-- in the database, so a captured dialog submission or slash command cannot be replayed
-- after the bot restarts. A key is kept until it could no longer be accepted anyway
-- (expires_at, epoch milliseconds), then pruned; the expiry index makes pruning a range
-- delete and lets the oldest keys be dropped first when the table is at its bound.

CREATE TABLE single_use_keys (
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;

CREATE INDEX single_use_keys_expiry ON single_use_keys (expires_at);
