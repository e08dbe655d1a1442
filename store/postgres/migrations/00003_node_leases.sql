-- +goose Up
-- The leases of the engines sharing the database (otp.Nodes): each renews its own; one whose lease ran out
-- is taken over by another, which removes its row.
CREATE TABLE node_leases (
	node       TEXT COLLATE "C" PRIMARY KEY,
	expires_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE node_leases;
