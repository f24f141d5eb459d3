DROP TABLE chat_partners;

DELETE FROM read_receipts WHERE role = 'partner';
ALTER TABLE read_receipts DROP CONSTRAINT read_receipts_role_check;
ALTER TABLE read_receipts ADD CONSTRAINT read_receipts_role_check CHECK (role IN ('customer', 'agent', 'admin'));

DELETE FROM chat_messages WHERE sender_type = 'partner';
ALTER TABLE chat_messages DROP CONSTRAINT chat_messages_sender_type_check;
ALTER TABLE chat_messages ADD CONSTRAINT chat_messages_sender_type_check
    CHECK (sender_type IN ('customer', 'bot', 'agent', 'system', 'note'));

UPDATE message_attachments SET uploader_id = NULL
    WHERE uploader_id IN (SELECT id FROM users WHERE role = 'partner');
DELETE FROM users WHERE role = 'partner';
ALTER TABLE users DROP CONSTRAINT users_partner_org_check;
DROP INDEX users_partner_org_idx;
ALTER TABLE users DROP COLUMN partner_org_id;
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('customer', 'agent', 'admin'));

DROP TABLE partner_orgs;
