-- The full timeline (issue 18): what an event is about, so the events of one post (added, removed,
-- edited, deleted) or of one member (joined, left) are found by an index instead of reading and
-- parsing the whole timeline. Events stay append-only; the column is set when an event is written
-- (domain/timeline.py subject_of) and never changed. Earlier events are about the incident (NULL),
-- except any of the kinds that name a subject, which are filled in here.

ALTER TABLE timeline_events ADD COLUMN subject_id TEXT;

UPDATE timeline_events SET subject_id = json_extract(details, '$.post_id')
    WHERE kind IN ('post_added', 'post_removed', 'post_edited', 'post_deleted');
UPDATE timeline_events SET subject_id = json_extract(details, '$.user_id')
    WHERE kind IN ('member_joined', 'member_left');
UPDATE timeline_events SET subject_id = json_extract(details, '$.event_id')
    WHERE kind = 'event_hidden';

CREATE INDEX timeline_events_subject ON timeline_events (incident_id, subject_id, seq)
    WHERE subject_id IS NOT NULL;
