-- Access codes for presales and partners (issue 19, API.md). A batch's codes are shown once,
-- at creation; only their keyed hashes (HMAC-SHA-256 under `[admission] access_code_key`) are
-- kept, here and in Redis, where the gateways redeem them atomically. Uses are counted in
-- Redis; revoking a batch stops its codes at once.
CREATE TABLE access_code_batches (
    id            text PRIMARY KEY,
    event_id      text NOT NULL REFERENCES events (id),
    count         integer NOT NULL CHECK (count BETWEEN 1 AND 10000),
    uses_per_code integer NOT NULL CHECK (uses_per_code BETWEEN 1 AND 1000000),
    expires_at    timestamptz NOT NULL,
    effect        text NOT NULL CHECK (effect IN ('skip', 'priority')),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX access_code_batches_event ON access_code_batches (event_id, created_at);

CREATE TABLE access_codes (
    code_hash text PRIMARY KEY,
    batch_id  text NOT NULL REFERENCES access_code_batches (id)
);
CREATE INDEX access_codes_batch ON access_codes (batch_id);
