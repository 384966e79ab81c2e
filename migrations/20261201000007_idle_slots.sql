-- An admitted fan with no booking activity for `idle_after_s` gives its slot under the
-- event's active cap to the next fan in line (see waitroom's session module). Additive: rows
-- written before it read the default.
ALTER TABLE events ADD COLUMN idle_after_s integer NOT NULL DEFAULT 180
    CHECK (idle_after_s BETWEEN 1 AND 86400);
