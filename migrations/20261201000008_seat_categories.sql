-- Seat categories, prices and kinds (issue 14). Each seat carries what never changes after
-- the show is made: its category and price (a show's layout names categories, one per row;
-- a show with a single `price_cents` has one category, "Standard"), its kind (a wheelchair
-- space or a companion seat beside one, marked in the layout) and whether an aisle follows
-- it. A hold's total is the sum of its seats' prices. The columns are never updated, so a
-- hold stays a HOT update of `status`, `booking_id`, `held_until` and `version` alone.
ALTER TABLE seats
    ADD COLUMN category    text    NOT NULL DEFAULT 'Standard',
    ADD COLUMN price_cents bigint,
    ADD COLUMN kind        text    NOT NULL DEFAULT 'standard'
        CHECK (kind IN ('standard', 'wheelchair', 'companion')),
    ADD COLUMN gap_after   boolean NOT NULL DEFAULT false;

-- Seats made before this migration cost their show's one price.
UPDATE seats SET price_cents = shows.price_cents FROM shows WHERE shows.id = seats.show_id;
ALTER TABLE seats ALTER COLUMN price_cents SET NOT NULL,
    ADD CONSTRAINT seats_price CHECK (price_cents >= 0);

-- Announcements list each seat with its row, number, category and price, so the ticket email
-- can say what was paid for each (`seats` stays the list of seat ids it always was).
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
                            THEN (SELECT code FROM tickets WHERE booking_id = NEW.id) END));
    PERFORM pg_notify('marquee_outbox', '');
    RETURN NULL;
END $$;
