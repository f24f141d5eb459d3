-- Email waiting to go out (transcripts, offline replies). Every node polls
-- it with FOR UPDATE SKIP LOCKED, so a message is sent by one node, and a
-- message whose node died while sending becomes due again.
CREATE TABLE email_outbox (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    kind            TEXT NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 40),
    session_id      UUID REFERENCES chat_sessions (id) ON DELETE SET NULL,
    to_address      TEXT NOT NULL CHECK (char_length(to_address) BETWEEN 3 AND 254),
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      TEXT,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX email_outbox_due_idx ON email_outbox (next_attempt_at) WHERE status = 'queued';
CREATE INDEX email_outbox_session_idx ON email_outbox (session_id, kind) WHERE session_id IS NOT NULL;
CREATE INDEX email_outbox_created_idx ON email_outbox (created_at DESC);
