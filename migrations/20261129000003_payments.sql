-- Payments, refunds, tickets, webhook events, and the outbox that announces booking changes.
-- Additive only.

ALTER TABLE bookings ADD COLUMN payment_intent_id text;

-- One row per payment attempt: a Stripe PaymentIntent. A declined attempt is closed and the
-- next checkout starts a new one (a new idempotency key).
CREATE TABLE payment_attempts (
    payment_intent_id text PRIMARY KEY,
    booking_id        text NOT NULL,
    show_id           text NOT NULL,
    attempt           integer NOT NULL,
    state             text NOT NULL DEFAULT 'open'
                      CHECK (state IN ('open', 'declined', 'succeeded', 'canceled')),
    stripe_status     text NOT NULL,
    amount_cents      bigint NOT NULL,
    currency          text NOT NULL,
    client_secret     text NOT NULL,
    email             text NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (booking_id, attempt)
);
-- At most one open attempt per booking.
CREATE UNIQUE INDEX payment_attempts_one_open ON payment_attempts (booking_id) WHERE state = 'open';
CREATE INDEX payment_attempts_open_since ON payment_attempts (started_at) WHERE state = 'open';

-- Money going back: for a payment that arrived after its seats were gone, or an operator's
-- refund. `pending` rows are retried by the reconciliation job until Stripe confirms.
CREATE TABLE refunds (
    payment_intent_id text PRIMARY KEY,
    booking_id        text NOT NULL,
    reason            text NOT NULL,
    state             text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'succeeded')),
    stripe_refund_id  text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_pending ON refunds (created_at) WHERE state = 'pending';

-- One ticket per confirmed booking: a random code looked up here (unforgeable without the
-- table), scanned once at the door.
CREATE TABLE tickets (
    code          text PRIMARY KEY,
    booking_id    text NOT NULL UNIQUE,
    show_id       text NOT NULL,
    seat_ids      text[] NOT NULL,
    voided_at     timestamptz,
    first_scan_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Each Stripe event handled once. `processing` rows older than a minute may be taken over
-- (the process handling them died).
CREATE TABLE webhook_events (
    event_id     text PRIMARY KEY,
    type         text NOT NULL,
    state        text NOT NULL DEFAULT 'processing' CHECK (state IN ('processing', 'done')),
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- The transactional outbox: written in the same transaction as the booking change it
-- announces; a relay publishes it to Kafka and marks it published.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    message_id   uuid NOT NULL UNIQUE,
    topic_key    text NOT NULL,
    type         text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Every booking change others care about is announced by the same transaction that makes it:
-- a trigger, so no code path (hold, sweeper, payment, refund) can forget.
CREATE FUNCTION announce_booking_change() RETURNS trigger LANGUAGE plpgsql AS $$
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
        'currency', NEW.currency));
    PERFORM pg_notify('marquee_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER bookings_announce
    AFTER UPDATE OF status ON bookings
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IN ('confirmed', 'expired', 'refunded'))
    EXECUTE FUNCTION announce_booking_change();
