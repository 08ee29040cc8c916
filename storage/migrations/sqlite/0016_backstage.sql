-- Schema version 16: backstage credentials (issue 19) — browser sessions and personal API tokens.
-- Only the SHA-256 of each secret is kept (token_hash); id names a credential in lists and when it is
-- revoked. expires_at is epoch ms, 0 for "until revoked".

CREATE TABLE web_credentials (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    csrf       TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE INDEX web_credentials_user ON web_credentials (user_id, kind, created_at);
