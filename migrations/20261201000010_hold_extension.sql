-- Hold extension (issue 15, API.md "Booking"): a live hold may be extended once, by the
-- event's `hold_extend_s`, never past `max_hold_s` from the hold's start (NULL: twice the
-- event's `hold_ttl_s`). `bookings.extended_at` records the one extension.
ALTER TABLE events
    ADD COLUMN hold_extend_s integer NOT NULL DEFAULT 300 CHECK (hold_extend_s BETWEEN 0 AND 3600),
    ADD COLUMN max_hold_s integer CHECK (max_hold_s BETWEEN 1 AND 7200);
ALTER TABLE bookings ADD COLUMN extended_at timestamptz;
