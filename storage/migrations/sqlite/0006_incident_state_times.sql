-- Schema version 6: when an incident's active stage was last set and when it was last
-- restarted. Card buttons carry them (domain/freshness.py), so after Next then Previous, or
-- End then Restart, a click drawn before the cycle is still out of date. NULL (never since the
-- incident started, and every incident stored before this version) adds nothing to a mark, so
-- cards drawn before the upgrade keep working. Plain columns after the others: no index holds them.

ALTER TABLE incidents ADD COLUMN stage_set_at INTEGER;
ALTER TABLE incidents ADD COLUMN restarted_at INTEGER;
