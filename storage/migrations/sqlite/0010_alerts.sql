-- Schema version 10: alerts from monitoring (issue 21, README "Alerts").
-- alerts: one row per (source, fingerprint); a repeat counts up and moves last_seen, so a restart
-- forgets nothing and dedupe survives it. alert_groups: what one routing rule made of one group key
-- (its suggestion post or its incident); seq counts the notifications that touched it and
-- posted_seq is the seq its last post showed, so the groups with news are those with seq > posted_seq.

CREATE TABLE alerts (
    source      TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    group_id    TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    resolved_at INTEGER,
    seq         INTEGER NOT NULL,  -- the group's seq when it was last notified (0: no group)
    resolved_seq INTEGER,          -- the group's seq when it last turned resolved
    details     TEXT    NOT NULL,  -- {"labels": {...}, "annotations": {...}} of the latest notification
    PRIMARY KEY (source, fingerprint)
) WITHOUT ROWID;

CREATE INDEX alerts_by_group ON alerts (group_id, first_seen);

CREATE TABLE alert_groups (
    id              TEXT    PRIMARY KEY,
    source          TEXT    NOT NULL,
    group_key       TEXT    NOT NULL,
    rule            TEXT    NOT NULL,
    channel_id      TEXT    NOT NULL,
    mode            TEXT    NOT NULL,
    first_seen      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    notifications   INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    posted_seq      INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL DEFAULT 'new',
    post_id         TEXT,
    incident_id     TEXT,
    created_post_at INTEGER,
    posted_at       INTEGER,
    last_error      TEXT
);

CREATE INDEX alert_groups_news ON alert_groups (channel_id, first_seen) WHERE seq > posted_seq;
CREATE INDEX alert_groups_created ON alert_groups (channel_id, created_post_at);
