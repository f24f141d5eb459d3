-- Partner organisations (a restaurant, a merchant, a courier company) whose
-- members an agent invites into a chat as a third participant.
CREATE TABLE partner_orgs (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name       TEXT NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 100),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('customer', 'agent', 'admin', 'partner'));
-- A partner account belongs to exactly one organisation; nobody else to any.
ALTER TABLE users ADD COLUMN partner_org_id UUID REFERENCES partner_orgs (id) ON DELETE CASCADE;
ALTER TABLE users ADD CONSTRAINT users_partner_org_check CHECK ((role = 'partner') = (partner_org_id IS NOT NULL));
CREATE INDEX users_partner_org_idx ON users (partner_org_id) WHERE partner_org_id IS NOT NULL;

ALTER TABLE chat_messages DROP CONSTRAINT chat_messages_sender_type_check;
ALTER TABLE chat_messages ADD CONSTRAINT chat_messages_sender_type_check
    CHECK (sender_type IN ('customer', 'bot', 'agent', 'system', 'note', 'partner'));

ALTER TABLE read_receipts DROP CONSTRAINT read_receipts_role_check;
ALTER TABLE read_receipts ADD CONSTRAINT read_receipts_role_check
    CHECK (role IN ('customer', 'agent', 'admin', 'partner'));

-- Which organisations were invited into which chat. A partner sees the
-- messages after `visible_after_seq` (0: the whole history), and nothing
-- once `removed_at` is set; a new invitation replaces the row.
CREATE TABLE chat_partners (
    session_id        UUID NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    partner_org_id    UUID NOT NULL REFERENCES partner_orgs (id) ON DELETE CASCADE,
    invited_by        UUID REFERENCES users (id) ON DELETE SET NULL,
    invited_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    visible_after_seq BIGINT NOT NULL DEFAULT 0 CHECK (visible_after_seq >= 0),
    removed_at        TIMESTAMPTZ,
    PRIMARY KEY (session_id, partner_org_id)
);
CREATE INDEX chat_partners_org_idx ON chat_partners (partner_org_id, invited_at DESC) WHERE removed_at IS NULL;
