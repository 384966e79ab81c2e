-- Safety-net mode (issue 19, API.md): `always` queues every fan; `safety_net` lets a fan
-- straight through when nobody is waiting, the event is open and not sold out, and the
-- admission budget the worker spends allows it (decided in the join script, atomically with the
-- worker's admissions).
ALTER TABLE events
    ADD COLUMN queue_mode text NOT NULL DEFAULT 'always' CHECK (queue_mode IN ('always', 'safety_net'));
