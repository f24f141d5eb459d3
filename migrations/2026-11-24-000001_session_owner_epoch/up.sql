-- The fencing number of the node that runs the session's actor: each new
-- owner takes the next one, and messages are stored only for the owner
-- whose number is still the session's (several nodes on Redis).
ALTER TABLE chat_sessions ADD COLUMN owner_epoch BIGINT NOT NULL DEFAULT 0;
