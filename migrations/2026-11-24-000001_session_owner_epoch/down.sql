ALTER TABLE chat_sessions DROP COLUMN owner_node;
ALTER TABLE chat_sessions DROP COLUMN owner_epoch;
