-- Opening hours: one row per team that has its own, and at most one row
-- without a team (the hours for every other chat). No row at all: always open.
CREATE TABLE business_hours (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id    UUID UNIQUE REFERENCES teams (id) ON DELETE CASCADE,
    -- An IANA time zone name (Europe/Berlin), checked by the server.
    time_zone  TEXT NOT NULL CHECK (char_length(time_zone) BETWEEN 1 AND 64),
    -- {"monday": [{"open": "09:00", "close": "17:00"}], …}, checked by the server.
    weekly     JSONB NOT NULL,
    -- Dates (in the time zone) on which it stays closed all day.
    holidays   DATE[] NOT NULL DEFAULT '{}',
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX business_hours_one_global_idx ON business_hours ((team_id IS NULL)) WHERE team_id IS NULL;

-- A customer who found nobody there left a message and an address to answer:
-- the chat waits in the queue as an offline request.
ALTER TABLE chat_sessions DROP CONSTRAINT chat_sessions_status_check;
ALTER TABLE chat_sessions ADD CONSTRAINT chat_sessions_status_check
    CHECK (status IN ('bot', 'waiting', 'assigned', 'closed', 'offline'));
ALTER TABLE chat_sessions ADD COLUMN offline_email TEXT CHECK (char_length(offline_email) <= 254);
