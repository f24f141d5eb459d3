ALTER TABLE chat_sessions DROP COLUMN offline_email;
UPDATE chat_sessions SET status = 'waiting' WHERE status = 'offline';
ALTER TABLE chat_sessions DROP CONSTRAINT chat_sessions_status_check;
ALTER TABLE chat_sessions ADD CONSTRAINT chat_sessions_status_check
    CHECK (status IN ('bot', 'waiting', 'assigned', 'closed'));
DROP TABLE business_hours;
