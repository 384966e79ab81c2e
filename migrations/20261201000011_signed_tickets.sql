-- Signed tickets (issue 15): the QR code carries a payload signed with a ticket key (an
-- EdDSA token of type `marquee-ticket`: code, show, seats), kept beside the code so the page,
-- the API and the email show the same one. Tickets issued before carry none (their QR code is
-- the bare code, still valid when scanned). Announcements carry it as `ticket_qr`.
ALTER TABLE tickets ADD COLUMN qr_payload text;

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
        'email', NEW.email,
        'total_cents', NEW.total_cents,
        'currency', NEW.currency,
        'ticket_code', CASE WHEN NEW.status = 'confirmed'
                            THEN (SELECT code FROM tickets WHERE booking_id = NEW.id) END,
        'ticket_qr', CASE WHEN NEW.status = 'confirmed'
                          THEN (SELECT qr_payload FROM tickets WHERE booking_id = NEW.id) END));
    PERFORM pg_notify('marquee_outbox', '');
    RETURN NULL;
END $$;
