-- PostgreSQL schema version 1: the SQLite schema as it stands after its migration 0009, in one step.
-- A file here runs as one script inside the migration's transaction (PL/pgSQL bodies stay whole).
--
-- Same columns, names and types as SQLite's, so both backends share their row <-> model helpers:
-- flags are INTEGER 0/1, times are epoch milliseconds (BIGINT), JSON documents are TEXT (kept as
-- written: the checklist cache is keyed by the text). Every text column is COLLATE "C", so equality,
-- ordering and prefixes compare bytes, as SQLite's default BINARY collation does, whatever locale
-- the database was created with. SQLite's NOCASE (ASCII letters only) is cc_fold() for ordering and
-- ILIKE for matching (both fold ASCII letters only under "C"). SQLite's rowid,
-- which breaks ties in the list orders, is incidents.seq.

CREATE FUNCTION cc_fold(value text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT lower(value COLLATE "C") $$;  -- under the C collation lower() folds ASCII letters only

CREATE TABLE playbooks (
    id                    text COLLATE "C" PRIMARY KEY,
    team_id               text COLLATE "C" NOT NULL,
    title                 text COLLATE "C" NOT NULL,
    description           text COLLATE "C" NOT NULL DEFAULT '',
    create_public_channel integer NOT NULL CHECK (create_public_channel IN (0, 1)),
    created_by            text COLLATE "C" NOT NULL,
    created_at            bigint NOT NULL,
    updated_at            bigint NOT NULL,
    version               integer NOT NULL,
    stages                text COLLATE "C" NOT NULL,
    default_commander_id  text COLLATE "C",
    updates               text COLLATE "C" NOT NULL DEFAULT '{}',
    invited_user_ids      text COLLATE "C" NOT NULL DEFAULT '[]',
    auto_follower_ids     text COLLATE "C" NOT NULL DEFAULT '[]'
);

CREATE INDEX playbooks_team_title ON playbooks (team_id, cc_fold(title));

CREATE TABLE playbook_members (
    playbook_id text COLLATE "C" NOT NULL REFERENCES playbooks (id) ON DELETE CASCADE,
    user_id     text COLLATE "C" NOT NULL,
    position    integer NOT NULL,
    PRIMARY KEY (playbook_id, user_id)
);

CREATE INDEX playbook_members_user ON playbook_members (user_id, playbook_id);

-- playbook_id deliberately has no foreign key: deleting a playbook keeps its incidents.
CREATE TABLE incidents (
    seq                 bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    id                  text COLLATE "C" PRIMARY KEY,
    team_id             text COLLATE "C" NOT NULL,
    channel_id          text COLLATE "C" NOT NULL UNIQUE,
    name                text COLLATE "C" NOT NULL,
    description         text COLLATE "C" NOT NULL DEFAULT '',
    commander_id        text COLLATE "C" NOT NULL,
    creator_id          text COLLATE "C" NOT NULL,
    playbook_id         text COLLATE "C",
    playbook_title      text COLLATE "C" NOT NULL DEFAULT '',
    active_stage        integer NOT NULL DEFAULT 0,
    status              text COLLATE "C" NOT NULL CHECK (status IN ('ongoing', 'ended')),
    created_at          bigint NOT NULL,
    ended_at            bigint,
    source_post_id      text COLLATE "C",
    card_post_id        text COLLATE "C",
    public              integer NOT NULL CHECK (public IN (0, 1)),
    version             integer NOT NULL,
    stage_set_at        bigint,
    restarted_at        bigint,
    last_update_at      bigint,
    last_update_by      text COLLATE "C",
    last_update_post_id text COLLATE "C",
    next_update_due_at  bigint,
    update_requested_at bigint,
    updates             text COLLATE "C" NOT NULL DEFAULT '{}',
    follower_ids        text COLLATE "C" NOT NULL DEFAULT '[]',
    stages              text COLLATE "C" NOT NULL
);

-- The list indexes: the team, one optional equality filter, then the order (seq breaks ties); the
-- columns the visibility test and the other filters read are included, so a page and its references
-- are chosen from the index (an index-only scan once the visibility map is set).
CREATE INDEX incidents_list ON incidents (team_id, created_at, seq)
    INCLUDE (public, channel_id, status, commander_id, playbook_id, name, id);
CREATE INDEX incidents_list_status ON incidents (team_id, status, created_at, seq)
    INCLUDE (public, channel_id, commander_id, playbook_id, name, id);
CREATE INDEX incidents_list_commander ON incidents (team_id, commander_id, created_at, seq)
    INCLUDE (public, channel_id, status, playbook_id, name, id);
CREATE INDEX incidents_list_playbook ON incidents (team_id, playbook_id, created_at, seq)
    INCLUDE (public, channel_id, status, commander_id, name, id);
CREATE INDEX incidents_list_name ON incidents (team_id, cc_fold(name), seq)
    INCLUDE (public, channel_id, status, commander_id, playbook_id, id);
CREATE INDEX incidents_without_card ON incidents (created_at, seq) WHERE card_post_id IS NULL;
CREATE INDEX incidents_update_due ON incidents (team_id, next_update_due_at)
    INCLUDE (commander_id, public, channel_id, playbook_id, created_at, seq, id)
    WHERE status = 'ongoing' AND next_update_due_at IS NOT NULL;

-- seq gives the order events were appended in (several may share a millisecond).
CREATE TABLE timeline_events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text COLLATE "C" NOT NULL UNIQUE,
    incident_id text COLLATE "C" NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          bigint NOT NULL,
    kind        text COLLATE "C" NOT NULL,
    actor_id    text COLLATE "C" NOT NULL,
    details     text COLLATE "C" NOT NULL DEFAULT '{}'
);

CREATE INDEX timeline_events_incident ON timeline_events (incident_id, seq);

CREATE TABLE settings (
    key        text COLLATE "C" PRIMARY KEY,
    value      text COLLATE "C" NOT NULL,
    updated_at bigint NOT NULL
);

CREATE TABLE single_use_keys (
    kind       text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (kind, key)
);

CREATE INDEX single_use_keys_expiry ON single_use_keys (expires_at);

CREATE TABLE jobs (
    id                  text COLLATE "C" PRIMARY KEY,
    kind                text COLLATE "C" NOT NULL,
    key                 text COLLATE "C" NOT NULL,
    incident_id         text COLLATE "C",
    due_at              bigint NOT NULL,
    payload             text COLLATE "C" NOT NULL DEFAULT '{}',
    state               text COLLATE "C" NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'claimed', 'done', 'cancelled', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    claimed_by          text COLLATE "C",
    token               text COLLATE "C",
    lease_until         bigint,
    delivery_started_at bigint,
    fired_at            bigint,
    finished_at         bigint,
    late                integer NOT NULL DEFAULT 0,
    created_at          bigint NOT NULL,
    last_error          text COLLATE "C"
);

CREATE UNIQUE INDEX jobs_pending_key ON jobs (kind, key) WHERE state = 'pending';
CREATE INDEX jobs_pending_due ON jobs (due_at, kind) WHERE state = 'pending';
CREATE INDEX jobs_claimed_lease ON jobs (lease_until, kind) WHERE state = 'claimed';
CREATE INDEX jobs_live_incident ON jobs (incident_id) WHERE state IN ('pending', 'claimed');
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('done', 'cancelled', 'failed');

-- The list generation (SQLite's 0009): a counter per team that moves on every insert and delete of an
-- incident and every update naming a column a list filter or the visibility test reads, in the same
-- transaction as the change, so a cached count is never trusted after anyone's write.
CREATE TABLE list_generations (
    team_id text COLLATE "C" PRIMARY KEY,
    n       bigint NOT NULL
);

CREATE FUNCTION cc_bump_list_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO list_generations (team_id, n) VALUES (NEW.team_id, 1)
            ON CONFLICT (team_id) DO UPDATE SET n = list_generations.n + 1;
        RETURN NEW;
    END IF;
    INSERT INTO list_generations (team_id, n) VALUES (OLD.team_id, 1)
        ON CONFLICT (team_id) DO UPDATE SET n = list_generations.n + 1;
    IF TG_OP = 'UPDATE' AND NEW.team_id IS DISTINCT FROM OLD.team_id THEN
        INSERT INTO list_generations (team_id, n) VALUES (NEW.team_id, 1)
            ON CONFLICT (team_id) DO UPDATE SET n = list_generations.n + 1;
    END IF;
    RETURN NULL;
END
$$;

-- Deferred to the commit: the team's counter row is locked for the commit only, not from the first
-- counted write on, so writers of one team do not queue behind one another's whole transactions, and
-- a transaction that changes two incidents cannot deadlock on the counter with one that changes one.
CREATE CONSTRAINT TRIGGER incidents_list_generation_insert AFTER INSERT ON incidents
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cc_bump_list_generation();
CREATE CONSTRAINT TRIGGER incidents_list_generation_delete AFTER DELETE ON incidents
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cc_bump_list_generation();
CREATE CONSTRAINT TRIGGER incidents_list_generation_update
    AFTER UPDATE OF team_id, channel_id, name, commander_id, playbook_id, status, public ON incidents
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cc_bump_list_generation();
