-- Traces across services (issue 15, DESIGN.md invariant 10): a reservation is one trace from
-- the gateway to its email. The booking keeps the `traceparent` of the request that made it
-- (NULL when spans are not exported); its PaymentIntent carries it in metadata, so Stripe's
-- webhook joins the trace; every outbox row about the booking carries it to the relay, which
-- puts it in the Kafka message's headers for the notifier.
ALTER TABLE bookings ADD COLUMN traceparent text;
ALTER TABLE outbox ADD COLUMN traceparent text;

-- An outbox row about a booking takes the booking's trace unless its writer gave one: so the
-- announcement trigger (migration 13) and any later writer need not know about traces.
CREATE FUNCTION outbox_trace() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.traceparent IS NULL AND NEW.payload ? 'booking_id' THEN
        NEW.traceparent := (SELECT traceparent FROM bookings
                            WHERE show_id = NEW.topic_key AND id = NEW.payload->>'booking_id');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER outbox_trace BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_trace();
