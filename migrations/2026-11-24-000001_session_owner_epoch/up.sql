-- The node that runs the session's actor and its fencing number: each new
-- owner takes the next number, and messages are stored only for the owner
-- whose number is still the session's. The node's name keeps a session
-- where it was when Redis lost its leases (several nodes on Redis).
ALTER TABLE chat_sessions ADD COLUMN owner_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chat_sessions ADD COLUMN owner_node TEXT;
