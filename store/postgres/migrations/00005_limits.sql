-- +goose Up
-- The rate limits' events (limits.Shared), so that a limit holds across the engines sharing the database.
-- limit_keys has a row per scope and key, locked while an event is checked and recorded: two engines
-- checking one key take turns.
CREATE TABLE limit_keys (
	key TEXT COLLATE "C" PRIMARY KEY
);

CREATE TABLE limit_events (
	key       TEXT COLLATE "C" NOT NULL,
	id        TEXT COLLATE "C" NOT NULL,
	at_ns     BIGINT NOT NULL,
	window_ns BIGINT NOT NULL,
	PRIMARY KEY (key, id)
);
CREATE INDEX limit_events_by_time ON limit_events (key, at_ns);

-- +goose Down
DROP TABLE limit_events;
DROP TABLE limit_keys;
