CREATE TABLE chat_sessions (
    id                   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id          UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status               TEXT NOT NULL DEFAULT 'bot' CHECK (status IN ('bot', 'waiting', 'assigned', 'closed')),
    priority             TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('high', 'normal', 'low')),
    assigned_agent_id    UUID REFERENCES users (id) ON DELETE SET NULL,
    is_active            BOOLEAN NOT NULL DEFAULT TRUE,
    is_resolved          BOOLEAN NOT NULL DEFAULT FALSE,
    title                TEXT,
    category             TEXT,
    bot_context          TEXT,
    conversation_context JSONB NOT NULL DEFAULT '{}'::jsonb,
    metadata             JSONB NOT NULL DEFAULT '{}'::jsonb,
    message_count        INTEGER NOT NULL DEFAULT 0,
    -- The highest sequence number handed out; the writer bumps it in the same
    -- transaction that inserts the messages, so numbers are gap-free.
    last_seq             BIGINT NOT NULL DEFAULT 0,
    last_activity        TIMESTAMPTZ NOT NULL DEFAULT now(),
    resolution_notes     TEXT,
    ended_reason         TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at            TIMESTAMPTZ,
    deleted_at           TIMESTAMPTZ
);

-- A customer's active, unresolved and recent sessions.
CREATE INDEX chat_sessions_customer_active_idx ON chat_sessions (customer_id, last_activity DESC)
    WHERE is_active AND deleted_at IS NULL;
CREATE INDEX chat_sessions_customer_unresolved_idx ON chat_sessions (customer_id, last_activity DESC)
    WHERE NOT is_resolved AND deleted_at IS NULL;
CREATE INDEX chat_sessions_customer_recent_idx ON chat_sessions (customer_id, created_at DESC)
    WHERE deleted_at IS NULL;
-- An agent's current sessions, rebuilt after a restart.
CREATE INDEX chat_sessions_agent_active_idx ON chat_sessions (assigned_agent_id)
    WHERE is_active AND assigned_agent_id IS NOT NULL;
-- Listing by status for agents and admins; finding abandoned sessions.
CREATE INDEX chat_sessions_status_activity_idx ON chat_sessions (status, last_activity DESC)
    WHERE deleted_at IS NULL;
