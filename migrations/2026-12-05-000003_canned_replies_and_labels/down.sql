DROP TABLE session_labels;
DROP TABLE labels;
DROP TABLE canned_replies;
