-- Files are kept in the database so every node of a cluster serves them.
CREATE TABLE message_attachments (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id   UUID NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    message_id   UUID REFERENCES chat_messages (id) ON DELETE SET NULL,
    uploader_id  UUID REFERENCES users (id) ON DELETE SET NULL,
    file_name    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL CHECK (size_bytes >= 0),
    data         BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX message_attachments_session_idx ON message_attachments (session_id);
CREATE INDEX message_attachments_message_idx ON message_attachments (message_id) WHERE message_id IS NOT NULL;

CREATE TABLE read_receipts (
    session_id     UUID NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    participant_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role           TEXT NOT NULL CHECK (role IN ('customer', 'agent', 'admin')),
    last_read_seq  BIGINT NOT NULL DEFAULT 0 CHECK (last_read_seq >= 0),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, participant_id)
);

CREATE TABLE session_analytics (
    session_id           UUID PRIMARY KEY REFERENCES chat_sessions (id) ON DELETE CASCADE,
    customer_messages    INTEGER NOT NULL DEFAULT 0,
    bot_messages         INTEGER NOT NULL DEFAULT 0,
    agent_messages       INTEGER NOT NULL DEFAULT 0,
    system_messages      INTEGER NOT NULL DEFAULT 0,
    was_transferred      BOOLEAN NOT NULL DEFAULT FALSE,
    transfer_count       INTEGER NOT NULL DEFAULT 0,
    handoff_requested_at TIMESTAMPTZ,
    first_assigned_at    TIMESTAMPTZ,
    first_response_at    TIMESTAMPTZ,
    -- From the handoff request to the first human reply.
    first_response_ms    BIGINT,
    -- From the handoff request to the first assignment.
    wait_ms              BIGINT,
    -- From the session's start to its close.
    duration_ms          BIGINT,
    resolved_by_bot      BOOLEAN NOT NULL DEFAULT FALSE,
    rating               SMALLINT CHECK (rating BETWEEN 1 AND 5),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX session_analytics_created_idx ON session_analytics (created_at);
