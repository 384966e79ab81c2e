-- Named operators with roles (issue 15). Each token is 256 random bits shown once at
-- creation; only its SHA-256 is kept (a slow hash buys nothing against a 256-bit secret).
-- `events` limits an event manager to those events; empty means every event.
CREATE TABLE operators (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$' AND name !~ '^config-'),
    role        text NOT NULL CHECK (role IN ('admin', 'event_manager', 'scanner')),
    events      text[] NOT NULL DEFAULT '{}',
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- The audit trail: every operator action, appended in the same transaction as the change it
-- records (an action with an outside effect appends its intent, acts, then appends the
-- outcome). Entries never hold secrets, codes or emails. Nothing may change or remove one:
-- the triggers below refuse UPDATE, DELETE and TRUNCATE to every role the service uses.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    operator    text NOT NULL,
    action      text NOT NULL,
    event_id    text,
    target      text NOT NULL,
    before      jsonb,
    after       jsonb,
    request_id  text
);
CREATE INDEX audit_log_event ON audit_log (event_id, id DESC);
CREATE INDEX audit_log_operator ON audit_log (operator, id DESC);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
