-- PostgreSQL schema version 7: what a timeline event is about (as SQLite's 0014_timeline.sql; issue 18),
-- so the events of one post, member or event are found by an index. Set when an event is written
-- (domain/timeline.py subject_of) and never changed; earlier events of the kinds that name a
-- subject are filled in here.

ALTER TABLE timeline_events ADD COLUMN subject_id text COLLATE "C";

UPDATE timeline_events SET subject_id = details::jsonb ->> 'post_id'
    WHERE kind IN ('post_added', 'post_removed', 'post_edited', 'post_deleted');
UPDATE timeline_events SET subject_id = details::jsonb ->> 'user_id'
    WHERE kind IN ('member_joined', 'member_left');
UPDATE timeline_events SET subject_id = details::jsonb ->> 'event_id'
    WHERE kind = 'event_hidden';

CREATE INDEX timeline_events_subject ON timeline_events (incident_id, subject_id, seq)
    WHERE subject_id IS NOT NULL;
