ALTER TABLE chat_sessions RESET (fillfactor);
