-- Schema version 8: status updates, reminders and followers (docs/status-updates.md).
-- Playbooks: their update settings (broadcast channel ids, default interval, template, where
-- reminders go) as one JSON document, the users invited to and following every new incident, and
-- the default commander. Incidents: their own copy of those update settings, their followers, the
-- last update (when, by whom, its post) and when the next one is due, and when one was last
-- requested. Existing rows get the defaults: no broadcast, no interval, no followers, nothing due,
-- which is exactly how they behaved before. No list index holds the new columns, so no existing
-- index changes. One partial index serves the overdue list and "/incident todo": ongoing
-- incidents that have a due time, by team and due time, covering what their references need.

ALTER TABLE playbooks ADD COLUMN default_commander_id TEXT;
ALTER TABLE playbooks ADD COLUMN updates TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(updates));
ALTER TABLE playbooks ADD COLUMN invited_user_ids TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(invited_user_ids));
ALTER TABLE playbooks ADD COLUMN auto_follower_ids TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(auto_follower_ids));

ALTER TABLE incidents ADD COLUMN last_update_at INTEGER;
ALTER TABLE incidents ADD COLUMN last_update_by TEXT;
ALTER TABLE incidents ADD COLUMN last_update_post_id TEXT;
ALTER TABLE incidents ADD COLUMN next_update_due_at INTEGER;
ALTER TABLE incidents ADD COLUMN update_requested_at INTEGER;
ALTER TABLE incidents ADD COLUMN updates TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(updates));
ALTER TABLE incidents ADD COLUMN follower_ids TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(follower_ids));

CREATE INDEX incidents_update_due ON incidents
    (team_id, next_update_due_at, commander_id, public, channel_id, playbook_id, created_at, name, id)
    WHERE status = 'ongoing' AND next_update_due_at IS NOT NULL;
