-- Outgoing webhooks (issue 21, docs/webhooks.md): a playbook's webhook targets (id, URL, events)
-- as one JSON list, and each incident's own copy of them, made at start. Existing rows get no
-- targets, which is how they behaved before. The deliveries themselves are scheduler jobs of kind
-- "webhook" (the jobs table of 0007): no table of their own.

ALTER TABLE playbooks ADD COLUMN webhooks TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(webhooks));
ALTER TABLE incidents ADD COLUMN webhooks TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(webhooks));
