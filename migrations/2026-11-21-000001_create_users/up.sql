-- Customers (anonymous visitors or users of the host website), human agents and admins.
CREATE TABLE users (
    id                   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    username             TEXT NOT NULL UNIQUE,
    display_name         TEXT NOT NULL,
    email                TEXT,
    role                 TEXT NOT NULL CHECK (role IN ('customer', 'agent', 'admin')),
    -- Visitors never sign in with a password.
    password_hash        TEXT,
    max_concurrent_chats INTEGER NOT NULL DEFAULT 5 CHECK (max_concurrent_chats > 0),
    status               TEXT NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'away', 'offline')),
    disabled             BOOLEAN NOT NULL DEFAULT FALSE,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at         TIMESTAMPTZ
);

CREATE INDEX users_role_status_idx ON users (role, status) WHERE NOT disabled;
