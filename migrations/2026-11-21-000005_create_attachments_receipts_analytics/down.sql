DROP TABLE session_analytics;
DROP TABLE read_receipts;
DROP TABLE message_attachments;
