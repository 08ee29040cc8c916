-- PostgreSQL schema version 3: alerts from monitoring (as SQLite's 0010_alerts.sql; README "Alerts").
-- alerts: one row per (source, fingerprint); alert_groups: what one routing rule made of one group
-- key. The groups with news are those with seq > posted_seq (a partial index per channel).

CREATE TABLE alerts (
    source       text COLLATE "C" NOT NULL,
    fingerprint  text COLLATE "C" NOT NULL,
    group_id     text COLLATE "C" NOT NULL,
    status       text COLLATE "C" NOT NULL,
    title        text COLLATE "C" NOT NULL,
    url          text COLLATE "C" NOT NULL,
    first_seen   bigint NOT NULL,
    last_seen    bigint NOT NULL,
    count        bigint NOT NULL,
    resolved_at  bigint,
    seq          bigint NOT NULL,
    resolved_seq bigint,
    details      text COLLATE "C" NOT NULL,
    PRIMARY KEY (source, fingerprint)
);

CREATE INDEX alerts_by_group ON alerts (group_id, first_seen);

CREATE TABLE alert_groups (
    id              text COLLATE "C" PRIMARY KEY,
    source          text COLLATE "C" NOT NULL,
    group_key       text COLLATE "C" NOT NULL,
    rule            text COLLATE "C" NOT NULL,
    channel_id      text COLLATE "C" NOT NULL,
    mode            text COLLATE "C" NOT NULL,
    first_seen      bigint NOT NULL,
    last_seen       bigint NOT NULL,
    notifications   bigint NOT NULL,
    seq             bigint NOT NULL,
    posted_seq      bigint NOT NULL DEFAULT 0,
    state           text COLLATE "C" NOT NULL DEFAULT 'new',
    post_id         text COLLATE "C",
    incident_id     text COLLATE "C",
    created_post_at bigint,
    posted_at       bigint,
    last_error      text COLLATE "C"
);

CREATE INDEX alert_groups_news ON alert_groups (channel_id, first_seen, id) WHERE seq > posted_seq;
CREATE INDEX alert_groups_created ON alert_groups (channel_id, created_post_at);
