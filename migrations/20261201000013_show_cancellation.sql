-- Cancelling a show (issue 15, API.md): the show is marked cancelled first, under the lock a
-- confirmation takes on the show's row (a confirm holds FOR KEY SHARE; the cancel takes FOR
-- UPDATE), so a payment confirmed after the mark is refunded, never confirmed. Then a job
-- (booking-core's `cancellation`, resumable: claimed for a while at a time, re-claimed after a
-- crash) releases the holds, cancels their open PaymentIntents and refunds every confirmed
-- booking once (the refund is recorded pending with the booking's change, then asked of
-- Stripe under an idempotency key per PaymentIntent; reconciliation finishes any a crash
-- left pending), until none is left.
ALTER TABLE shows
    ADD COLUMN status text NOT NULL DEFAULT 'on_sale' CHECK (status IN ('on_sale', 'cancelled')),
    ADD COLUMN cancelled_at timestamptz;

CREATE TABLE show_cancellations (
    show_id        text PRIMARY KEY REFERENCES shows (id),
    requested_at   timestamptz NOT NULL DEFAULT now(),
    requested_by   text NOT NULL,
    -- Confirmed bookings when the job first ran, and how many it has refunded since.
    total          integer,
    refunded       integer NOT NULL DEFAULT 0,
    -- The job holds the work until then; after, any replica may take it up again.
    claimed_until  timestamptz,
    done_at        timestamptz
);
CREATE INDEX show_cancellations_open ON show_cancellations (requested_at) WHERE done_at IS NULL;

-- The announcement of a booking change, as it now is (migrations 8, 11 and 12 added to it):
-- each seat with its row, number, category and price (`seat_details`, for the email), the
-- fan's email sealed (`email_enc`, never the clear one), the ticket's signed QR payload
-- (`ticket_qr`), and for a refund why (`reason`: the operator, the show's cancellation, or a
-- hold lost).
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
        'reason', CASE WHEN NEW.status = 'refunded' THEN
                    CASE NEW.status_reason WHEN 'show cancelled' THEN 'show_cancelled'
                                           WHEN 'refunded by an operator' THEN 'operator'
                                           WHEN 'refunded in Stripe' THEN 'operator'
                                           ELSE 'hold_lost' END END,
        'ticket_code', CASE WHEN NEW.status = 'confirmed'
                            THEN (SELECT code FROM tickets WHERE booking_id = NEW.id) END,
        'ticket_qr', CASE WHEN NEW.status = 'confirmed'
                          THEN (SELECT qr_payload FROM tickets WHERE booking_id = NEW.id) END));
    PERFORM pg_notify('marquee_outbox', '');
    RETURN NULL;
END $$;
