-- PostgreSQL schema version 5: outgoing webhook targets (as SQLite's 0012_webhooks.sql; docs/webhooks.md).

ALTER TABLE playbooks ADD COLUMN webhooks text COLLATE "C" NOT NULL DEFAULT '[]';
ALTER TABLE incidents ADD COLUMN webhooks text COLLATE "C" NOT NULL DEFAULT '[]';
