-- Seats, holds and bookings, partitioned by show so a hot show's rows, indexes and vacuum
-- stay apart from every other show's.

-- Stamped on every seat change: a show's seat-map version is the largest stamp among its
-- seats, so no per-show counter row is written (and contended) by every hold.
CREATE SEQUENCE seat_version_seq;

CREATE TABLE seats (
    show_id     text NOT NULL,
    seat_id     text NOT NULL,
    row_name    text NOT NULL,
    row_index   integer NOT NULL,
    number      integer NOT NULL,
    status      text NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'held', 'booked')),
    -- The one booking holding or owning this seat: one column, so two holders cannot exist.
    booking_id  text,
    held_until  timestamptz,
    version     bigint NOT NULL DEFAULT nextval('seat_version_seq'),
    PRIMARY KEY (show_id, seat_id),
    CONSTRAINT seats_holder CHECK ((status = 'available') = (booking_id IS NULL)),
    CONSTRAINT seats_hold_window CHECK ((status = 'held') = (held_until IS NOT NULL))
) PARTITION BY HASH (show_id);

CREATE TABLE bookings (
    id           text NOT NULL,
    show_id      text NOT NULL,
    event_id     text NOT NULL,
    visitor_id   text NOT NULL,
    status       text NOT NULL CHECK (status IN ('held', 'confirmed', 'expired', 'released', 'refunded')),
    seat_ids     text[] NOT NULL CHECK (cardinality(seat_ids) BETWEEN 1 AND 10),
    total_cents  bigint NOT NULL CHECK (total_cents >= 0),
    currency     text NOT NULL,
    expires_at   timestamptz NOT NULL,
    email        text,
    status_reason text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz,
    PRIMARY KEY (show_id, id)
) PARTITION BY HASH (show_id);
-- At most one active hold per visitor per show, enforced by the database.
CREATE UNIQUE INDEX bookings_one_hold_per_visitor ON bookings (show_id, visitor_id) WHERE status = 'held';
-- The sweeper's scan: lapsed holds, oldest first.
CREATE INDEX bookings_lapsed ON bookings (expires_at) WHERE status = 'held';

-- Finds a reservation's show (and so its partition) from its id alone.
CREATE TABLE booking_index (
    id       text PRIMARY KEY,
    show_id  text NOT NULL
);

-- A seat sold is a row here; the primary key makes a second sale of the same seat impossible
-- whatever the application does. Removed only by a refund.
CREATE TABLE sold_seats (
    show_id     text NOT NULL,
    seat_id     text NOT NULL,
    booking_id  text NOT NULL,
    sold_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (show_id, seat_id),
    FOREIGN KEY (show_id, seat_id) REFERENCES seats (show_id, seat_id)
) PARTITION BY HASH (show_id);

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format('CREATE TABLE seats_p%s PARTITION OF seats FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
        EXECUTE format('CREATE TABLE bookings_p%s PARTITION OF bookings FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
        EXECUTE format('CREATE TABLE sold_seats_p%s PARTITION OF sold_seats FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
    END LOOP;
END $$;

-- Idempotency: the first final response per (scope, route, key), replayed for 24 h.
CREATE TABLE idempotency_keys (
    scope          text NOT NULL,
    route          text NOT NULL,
    key            text NOT NULL,
    request_hash   text NOT NULL,
    -- NULL while the first request is still running.
    response_status integer,
    response_body  jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, route, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- The sweeper's scan for lapsed seat holds, and the sold-out check's scan for free seats.
CREATE INDEX seats_lapsed ON seats (held_until) WHERE status = 'held';
CREATE INDEX seats_free ON seats (show_id) WHERE status = 'available';
