-- Catalog: theaters, screens, movies, on-sale events and their shows.

CREATE TABLE theaters (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    city        text NOT NULL CHECK (length(city) BETWEEN 1 AND 100),
    -- IANA zone; `date=` filters compare against the show's local date in this zone.
    time_zone   text NOT NULL,
    UNIQUE (name, city)
);
CREATE INDEX theaters_city ON theaters (lower(city));

CREATE TABLE screens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    theater_id  uuid NOT NULL REFERENCES theaters (id),
    name        text NOT NULL,
    UNIQUE (theater_id, name)
);

CREATE TABLE movies (
    id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title   text NOT NULL UNIQUE CHECK (length(title) BETWEEN 1 AND 300),
    genres  text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX movies_genres ON movies USING gin (genres);

-- One on-sale: a queue with its live settings. Postgres is the source of truth; each change
-- is written to Redis (`wr:{id}:cfg`) by the request that makes it.
CREATE TABLE events (
    id                    text PRIMARY KEY CHECK (id ~ '^[a-z0-9-]{1,64}$'),
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    state                 text NOT NULL DEFAULT 'prequeue'
                          CHECK (state IN ('prequeue', 'open', 'paused', 'closed')),
    opens_at              timestamptz NOT NULL,
    rate_per_minute       integer NOT NULL CHECK (rate_per_minute > 0),
    max_active            integer NOT NULL CHECK (max_active > 0),
    session_ttl_s         integer NOT NULL CHECK (session_ttl_s > 0),
    hold_ttl_s            integer NOT NULL CHECK (hold_ttl_s > 0),
    min_poll_interval_ms  integer NOT NULL CHECK (min_poll_interval_ms >= 0),
    abandon_after_s       integer NOT NULL CHECK (abandon_after_s > 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shows (
    id           text PRIMARY KEY,
    event_id     text NOT NULL REFERENCES events (id),
    movie_id     uuid NOT NULL REFERENCES movies (id),
    screen_id    uuid NOT NULL REFERENCES screens (id),
    starts_at    timestamptz NOT NULL,
    price_cents  bigint NOT NULL CHECK (price_cents >= 0),
    currency     text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    seat_count   integer NOT NULL CHECK (seat_count > 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shows_starts_at ON shows (starts_at);
CREATE INDEX shows_event ON shows (event_id);
CREATE INDEX shows_movie ON shows (movie_id, starts_at);
