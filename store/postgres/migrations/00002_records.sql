-- +goose Up
-- The small records, by kind, each the bytes its package encodes: apps and their API keys, number pools,
-- quarantines, recipients' recent calls, console operators and audit entries, TOTP enrollments.
CREATE TABLE records (
	kind  TEXT COLLATE "C" NOT NULL,
	key   TEXT COLLATE "C" NOT NULL,
	value BYTEA NOT NULL,
	PRIMARY KEY (kind, key)
);

-- +goose Down
DROP TABLE records;
