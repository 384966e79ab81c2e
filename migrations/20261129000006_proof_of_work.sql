-- Bot friction at join, per event: a new visitor first solves a proof-of-work challenge of
-- this many leading zero bits (0 = none).
ALTER TABLE events ADD COLUMN pow_bits smallint NOT NULL DEFAULT 0 CHECK (pow_bits BETWEEN 0 AND 24);
