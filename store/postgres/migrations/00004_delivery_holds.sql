-- +goose Up
-- An engine delivering a webhook holds it (webhook.Store.Claim), so that the engines sharing the database do
-- not all post it; a hold that runs out (its engine died) lets another engine take it.
ALTER TABLE webhook_deliveries ADD COLUMN held_until TIMESTAMPTZ;

-- +goose Down
ALTER TABLE webhook_deliveries DROP COLUMN held_until;
