DROP TABLE queue_entries;
