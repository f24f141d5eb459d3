-- Private notes between staff are messages of their own sender kind, numbered
-- in the chat's seq like the rest so the staff's history is one ordered list.
ALTER TABLE chat_messages DROP CONSTRAINT chat_messages_sender_type_check;
ALTER TABLE chat_messages ADD CONSTRAINT chat_messages_sender_type_check
    CHECK (sender_type IN ('customer', 'bot', 'agent', 'system', 'note'));
