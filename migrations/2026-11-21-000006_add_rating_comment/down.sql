ALTER TABLE session_analytics DROP COLUMN rating_comment;
