-- The notifier's memory: each message handled once (an email sent, or dead-lettered), so a
-- message delivered twice by Kafka sends one email.
CREATE TABLE notifications (
    message_id  uuid PRIMARY KEY,
    booking_id  text NOT NULL,
    state       text NOT NULL CHECK (state IN ('sent', 'dead_lettered')),
    attempts    integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Announcements now carry the ticket code, so the email needs nothing else.
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
        'email', NEW.email,
        'total_cents', NEW.total_cents,
        'currency', NEW.currency,
        'ticket_code', CASE WHEN NEW.status = 'confirmed'
                            THEN (SELECT code FROM tickets WHERE booking_id = NEW.id) END));
    PERFORM pg_notify('marquee_outbox', '');
    RETURN NULL;
END $$;
