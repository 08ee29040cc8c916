-- Backstage credentials (issue 19): browser sessions and personal API tokens; the same columns as
-- SQLite's 0016_backstage.sql. Only the SHA-256 of each secret is kept.

CREATE TABLE web_credentials (
    id         TEXT COLLATE "C" PRIMARY KEY,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    kind       TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL DEFAULT '',
    csrf       TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX web_credentials_user ON web_credentials (user_id, kind, created_at);
