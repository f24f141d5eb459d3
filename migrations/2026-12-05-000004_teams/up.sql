-- Teams (departments): agents belong to teams; a chat may be routed to one,
-- and the queue gives it to that team's agents first.
CREATE TABLE teams (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name       TEXT NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 60),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE team_members (
    team_id UUID NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_idx ON team_members (user_id);

ALTER TABLE chat_sessions ADD COLUMN team_id UUID REFERENCES teams (id) ON DELETE SET NULL;
CREATE INDEX chat_sessions_team_idx ON chat_sessions (team_id) WHERE team_id IS NOT NULL;
