ALTER TABLE session_analytics ADD COLUMN rating_comment TEXT;
