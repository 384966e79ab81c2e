-- Seat holds and releases become heap-only (HOT) updates: no index covers a column they
-- change (status, booking_id, held_until, version), so Postgres writes no index entries for
-- them, and each seat page keeps room for its rows' next versions.
--
-- What the two partial indexes served is now reached another way: the sweeper finds lapsed
-- seats through the lapsed bookings that hold them (`bookings_lapsed`), and the free-seat
-- checks read the show's seats through the primary key.
DROP INDEX seats_lapsed;
DROP INDEX seats_free;

DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format('ALTER TABLE seats_p%s SET (fillfactor = 70)', i);
    END LOOP;
END $$;
