-- What an event tells its crowd (issue 19, API.md): the operator's live message, shown on every
-- waiting page at its next poll, and the event's presentation (a display name, an accent
-- colour, a logo). Checked by booking-core's `presentation` rules before they get here; NULL
-- is none.
ALTER TABLE events
    ADD COLUMN message      text,
    ADD COLUMN display_name text,
    ADD COLUMN accent_color text CHECK (accent_color ~ '^#[0-9a-f]{6}$'),
    ADD COLUMN logo_url     text CHECK (logo_url LIKE 'https://%');
