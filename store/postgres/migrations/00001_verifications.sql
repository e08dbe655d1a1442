-- +goose Up
-- otp's records (otp.Store): each verification's record with the columns its lookups need, the expiry index,
-- events, verify attempts, report rows, otp's bookkeeping and the webhook deliveries written with them.
-- Keys are text compared byte by byte (COLLATE "C"): IDs are time-ordered ULIDs, "newest first" is
-- descending ID order, whatever the database's locale.
CREATE TABLE verifications (
	id         TEXT COLLATE "C" PRIMARY KEY,
	app        TEXT COLLATE "C" NOT NULL,
	recipient  TEXT COLLATE "C" NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	rec        BYTEA NOT NULL
);
CREATE INDEX verifications_by_app ON verifications (app, id);
CREATE INDEX verifications_by_recipient ON verifications (app, recipient, id);

-- The expiry index, to the millisecond (Unix time).
CREATE TABLE verification_expiry (
	at_ms BIGINT NOT NULL,
	id    TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (at_ms, id)
);

CREATE TABLE verification_events (
	app  TEXT COLLATE "C" NOT NULL,
	id   TEXT COLLATE "C" NOT NULL,
	body BYTEA NOT NULL,
	PRIMARY KEY (app, id)
);

CREATE TABLE verify_attempts (
	verification_id TEXT COLLATE "C" NOT NULL,
	id              TEXT COLLATE "C" NOT NULL,
	body            BYTEA NOT NULL,
	PRIMARY KEY (verification_id, id)
);

CREATE TABLE report_rows (
	app  TEXT COLLATE "C" NOT NULL,
	day  TEXT COLLATE "C" NOT NULL,
	grp  TEXT COLLATE "C" NOT NULL,
	key  TEXT COLLATE "C" NOT NULL,
	row_ BYTEA NOT NULL,
	PRIMARY KEY (app, day, grp, key)
);

CREATE TABLE otp_meta (
	name  TEXT COLLATE "C" PRIMARY KEY,
	value BYTEA NOT NULL
);

CREATE TABLE webhook_deliveries (
	id   TEXT COLLATE "C" PRIMARY KEY,
	body BYTEA NOT NULL
);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE otp_meta;
DROP TABLE report_rows;
DROP TABLE verify_attempts;
DROP TABLE verification_events;
DROP TABLE verification_expiry;
DROP TABLE verifications;
