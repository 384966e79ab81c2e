-- The catalog at the design's scale (issue 16: 5,000 theaters, 350,000 shows): a search for a
-- city reads its theaters (`theaters_city`), their screens (the unique key's theater_id), and
-- each screen's upcoming shows through this index, of one local day when a date is asked,
-- instead of scanning every show.
CREATE INDEX shows_screen_starts ON shows (screen_id, starts_at);
