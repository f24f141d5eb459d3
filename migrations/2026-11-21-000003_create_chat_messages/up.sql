CREATE TABLE chat_messages (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id    UUID NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL CHECK (seq > 0),
    -- Set by customers and agents so a resent message is recognised; bots and
    -- the system leave it empty.
    client_msg_id TEXT,
    sender_type   TEXT NOT NULL CHECK (sender_type IN ('customer', 'bot', 'agent', 'system')),
    sender_id     UUID REFERENCES users (id) ON DELETE SET NULL,
    content       TEXT NOT NULL,
    message_type  TEXT NOT NULL DEFAULT 'text',
    intent        TEXT,
    entities      JSONB,
    confidence    REAL,
    processing    JSONB,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ,
    CONSTRAINT chat_messages_session_seq_key UNIQUE (session_id, seq),
    CONSTRAINT chat_messages_client_msg_key UNIQUE (session_id, sender_id, client_msg_id)
);

CREATE INDEX chat_messages_created_at_idx ON chat_messages (created_at);
