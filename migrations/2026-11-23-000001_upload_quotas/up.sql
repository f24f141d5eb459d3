-- A customer's stored bytes are summed on every upload (the quotas), and
-- files never sent are swept by age.
CREATE INDEX message_attachments_uploader_idx ON message_attachments (uploader_id, session_id);
CREATE INDEX message_attachments_unclaimed_idx ON message_attachments (created_at) WHERE message_id IS NULL;
