-- Replies agents insert with a shortcut ("/refund"); admins manage them.
CREATE TABLE canned_replies (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    shortcut   TEXT NOT NULL UNIQUE CHECK (shortcut ~ '^[a-z0-9_-]{1,32}$'),
    title      TEXT NOT NULL,
    content    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The desk's seven built-in replies, now rows an admin may change.
-- {name} and {agent} are filled in by the desk.
INSERT INTO canned_replies (shortcut, title, content) VALUES
    ('greeting', 'Greeting', 'Hi {name}, thanks for waiting! I''m {agent} and I''ll be helping you today.'),
    ('moment', 'One moment', 'Let me look into that for you. It will only take a moment.'),
    ('order', 'Order number', 'Could you share your order number? You''ll find it in your confirmation email.'),
    ('refund', 'Refund timing', 'Your refund is on its way. It usually reaches your card within 5 business days.'),
    ('passed', 'Passed on', 'I''ve passed this to the right team, and they will email you within one business day.'),
    ('anything', 'Anything else?', 'Is there anything else I can help you with today?'),
    ('goodbye', 'Goodbye', 'Thanks for chatting with us, {name}. Have a great day!');

-- Labels (tags) on chats, for search and reports.
CREATE TABLE labels (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name       TEXT NOT NULL UNIQUE,
    color      TEXT NOT NULL CHECK (color ~ '^#[0-9a-f]{6}$'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE session_labels (
    session_id UUID NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    label_id   UUID NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    PRIMARY KEY (session_id, label_id)
);
CREATE INDEX session_labels_label_idx ON session_labels (label_id);
