-- Fans' emails sealed at rest and on the topic (DESIGN.md invariant 9, issue 15). Each table
-- that held an email in clear now holds it sealed (`email_enc`: {kid, nonce, ciphertext},
-- XChaCha20-Poly1305 under a key from configuration) and, where it is looked up, its keyed
-- hash (`email_hash`, HMAC-SHA-256 under a key of its own). The clear `email` columns stay
-- only for rows written before this migration: booking-core seals those at start (it holds
-- the keys; SQL does not) and empties the column (`pii_sweep`); nothing writes it any more.
ALTER TABLE bookings ADD COLUMN email_enc jsonb, ADD COLUMN email_hash text;
ALTER TABLE payment_attempts ADD COLUMN email_enc jsonb, ADD COLUMN email_hash text,
    ALTER COLUMN email DROP NOT NULL;
CREATE INDEX bookings_email_hash ON bookings (email_hash) WHERE email_hash IS NOT NULL;
-- What is left to seal, found at once however large the tables grow.
CREATE INDEX bookings_email_clear ON bookings (show_id, id) WHERE email IS NOT NULL;
CREATE INDEX payment_attempts_email_clear ON payment_attempts (payment_intent_id) WHERE email IS NOT NULL;
CREATE INDEX outbox_email_clear ON outbox (id) WHERE payload ? 'email';

-- Announcements carry the sealed email (`email_enc`), never the clear one.
CREATE OR REPLACE FUNCTION announce_booking_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := CASE NEW.status
        WHEN 'confirmed' THEN 'BookingConfirmed'
        WHEN 'expired' THEN 'BookingExpired'
        WHEN 'refunded' THEN 'BookingRefunded'
    END;
    id uuid := gen_random_uuid();
BEGIN
    INSERT INTO outbox (message_id, topic_key, type, payload)
    VALUES (id, NEW.show_id, kind, jsonb_build_object(
        'message_id', id,
        'type', kind,
        'occurred_at', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'schema_version', 1,
        'event_id', NEW.event_id,
        'booking_id', NEW.id,
        'show_id', NEW.show_id,
        'seats', to_jsonb(NEW.seat_ids),
        'seat_details', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                 'id', s.seat_id, 'row', s.row_name, 'number', s.number,
                                 'category', s.category, 'price_cents', s.price_cents)
                             ORDER BY s.row_index, s.number), '[]'::jsonb)
                         FROM seats s WHERE s.show_id = NEW.show_id AND s.seat_id = ANY(NEW.seat_ids)),
        'email_enc', NEW.email_enc,
        'total_cents', NEW.total_cents,
        'currency', NEW.currency,
        'ticket_code', CASE WHEN NEW.status = 'confirmed'
                            THEN (SELECT code FROM tickets WHERE booking_id = NEW.id) END,
        'ticket_qr', CASE WHEN NEW.status = 'confirmed'
                          THEN (SELECT qr_payload FROM tickets WHERE booking_id = NEW.id) END));
    PERFORM pg_notify('marquee_outbox', '');
    RETURN NULL;
END $$;
