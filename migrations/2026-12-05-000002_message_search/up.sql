-- Full-text search over what was said. The 'simple' configuration neither
-- stems nor drops stop words, so it serves every language the same way;
-- queries must use the same expression to use the index.
CREATE INDEX chat_messages_search_idx ON chat_messages USING GIN (to_tsvector('simple', content));
