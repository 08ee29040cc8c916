-- Schema version 3: find incidents whose card was never posted (a crash between
-- committing the incident and posting its card), so start-up can repair them.
-- Partial index: it only holds the rare rows that need repair.

CREATE INDEX incidents_without_card ON incidents (created_at) WHERE card_post_id IS NULL;
