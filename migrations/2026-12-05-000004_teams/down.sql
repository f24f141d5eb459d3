ALTER TABLE chat_sessions DROP COLUMN team_id;
DROP TABLE team_members;
DROP TABLE teams;
