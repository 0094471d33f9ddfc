-- The runs_inserted trigger reads the inserted rows once (one aggregate) instead of once per
-- check, and runs only the statements the rows need: a single enqueue paid for five scans of
-- its transition table (about 0.1 ms of the insert's 0.27 ms). Same effects as 0005's version.
CREATE OR REPLACE FUNCTION sandfire_runs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad_state run_state;
    stored_first boolean;
    waiting boolean;
    continuations boolean;
    queues text[];
    delayed boolean;
BEGIN
    SELECT (array_agg(state) FILTER (WHERE state NOT IN ('scheduled', 'awaiting', 'enqueued')))[1],
           coalesce(bool_or(state <> 'enqueued'), false),
           coalesce(bool_or(state IN ('scheduled', 'enqueued')), false),
           coalesce(bool_or(after_run IS NOT NULL), false),
           array_agg(DISTINCT queue) FILTER (WHERE state = 'enqueued'),
           coalesce(bool_or(state = 'scheduled'), false)
    INTO bad_state, stored_first, waiting, continuations, queues, delayed
    FROM new_runs;
    IF bad_state IS NOT NULL THEN
        RAISE EXCEPTION 'a run cannot be created in state %', bad_state
            USING ERRCODE = 'check_violation';
    END IF;
    IF waiting THEN
        INSERT INTO run_queue (run_id, tenant_id, queue, priority, due_at, state, schedule_id)
        SELECT id, tenant_id, queue, priority, scheduled_at, state, schedule_id
        FROM new_runs WHERE state IN ('scheduled', 'enqueued');
    END IF;
    -- Only runs not created `enqueued` get a stored first entry (the rest is derived).
    IF stored_first THEN
        INSERT INTO run_events (run_id, at, from_state, to_state, reason)
        SELECT id, created_at, NULL, state, origin FROM new_runs WHERE state <> 'enqueued';
    END IF;
    -- A continuation marks its parent, so the parent's end looks for continuations.
    IF continuations THEN
        UPDATE runs p SET has_dependents = true
        WHERE p.id IN (SELECT after_run FROM new_runs WHERE after_run IS NOT NULL)
          AND NOT p.has_dependents;
    END IF;
    IF queues IS NOT NULL THEN
        PERFORM pg_notify('sandfire_enqueued', q) FROM unnest(queues) AS q;
    END IF;
    IF delayed THEN
        PERFORM pg_notify('sandfire_scheduled', '');
    END IF;
    RETURN NULL;
END
$$;
