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

-- Announcements list each seat with its row, number, category and price (`seat_details`),
-- so the ticket email can say what was paid for each: see migration 13, which defines the
-- announcement as it now is.
