-- Each stored batch updates its sessions' counters (last_seq, message_count,
-- updated_at), none of them indexed. Room left on each page lets PostgreSQL
-- keep the new row version on the same page (a HOT update) instead of
-- writing every index of the table again.
ALTER TABLE chat_sessions SET (fillfactor = 70);
