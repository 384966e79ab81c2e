-- Fans' emails sealed at rest and on the topic (DESIGN.md invariant 9, issue 15). Each table
-- that held an email in clear now holds it sealed (`email_enc`: {kid, nonce, ciphertext},
-- XChaCha20-Poly1305 under a key from configuration) and, where it is looked up, its keyed
-- hash (`email_hash`, HMAC-SHA-256 under a key of its own). The clear `email` columns stay
-- only for rows written before this migration: booking-core seals those at start (it holds
-- the keys; SQL does not) and empties the column (`pii_sweep`); nothing writes it any more.
-- Announcements carry `email_enc` instead of `email` (the trigger: migration 13).
ALTER TABLE bookings ADD COLUMN email_enc jsonb, ADD COLUMN email_hash text;
ALTER TABLE payment_attempts ADD COLUMN email_enc jsonb, ADD COLUMN email_hash text,
    ALTER COLUMN email DROP NOT NULL;
CREATE INDEX bookings_email_hash ON bookings (email_hash) WHERE email_hash IS NOT NULL;
-- What is left to seal, found at once however large the tables grow.
CREATE INDEX bookings_email_clear ON bookings (show_id, id) WHERE email IS NOT NULL;
CREATE INDEX payment_attempts_email_clear ON payment_attempts (payment_intent_id) WHERE email IS NOT NULL;
CREATE INDEX outbox_email_clear ON outbox (id) WHERE payload ? 'email';
