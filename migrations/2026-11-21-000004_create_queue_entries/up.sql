-- The durable record of the handoff queue: the QueueActor rebuilds itself
-- from the active rows after a restart.
CREATE TABLE queue_entries (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id        UUID NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    priority          TEXT NOT NULL CHECK (priority IN ('high', 'normal', 'low')),
    reason            TEXT,
    requested_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    assigned_at       TIMESTAMPTZ,
    assigned_agent_id UUID REFERENCES users (id) ON DELETE SET NULL,
    is_active         BOOLEAN NOT NULL DEFAULT TRUE
);

-- A session waits in the queue at most once at a time.
CREATE UNIQUE INDEX queue_entries_active_session_idx ON queue_entries (session_id) WHERE is_active;
CREATE INDEX queue_entries_waiting_idx ON queue_entries (priority, requested_at) WHERE is_active;
