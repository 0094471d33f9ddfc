-- The hot path, rebuilt (see docs/performance.md for the measurements behind each choice).
--
-- 1. A narrow hot table, `run_queue`: one row per run that waits to be executed or is being
--    executed (states scheduled, retrying, enqueued, running), with the columns claims,
--    leases, promotion and rescue need. Claims lock and update it; completions delete from it
--    where the lease token still matches (the guarded write).
-- 2. `runs` keeps the durable record, and no index on it names a column the hot path changes
--    (state, attempt, times, output): its updates are HOT (no index writes).
-- 3. No row triggers on the hot path. One statement-level trigger per statement enforces the
--    state machine, records history, keeps `run_queue` in step for every state change the hot
--    statements do not handle themselves, wakes runners, counts batch progress and resolves
--    continuations iteratively (no recursion, whatever the chain length).
-- 4. Routine transitions are derived, not stored: a run created `enqueued`, each attempt's
--    enqueued -> running (from the attempt), and running -> succeeded (from an `ok` attempt).
--    Every other transition is a row in `run_events`, written by the same statement.
-- 5. The attempt row is written once, when the attempt ends (or is rescued).

-- Old triggers and functions: row-level, called on every claim and completion.
DROP TRIGGER runs_transition_check ON runs;
DROP TRIGGER runs_transition_insert ON runs;
DROP TRIGGER runs_transition_update ON runs;
DROP TRIGGER runs_resolve_dependents ON runs;
DROP TRIGGER runs_await_parent ON runs;
DROP FUNCTION sandfire_run_transition_check();
DROP FUNCTION sandfire_run_transition_record();
DROP FUNCTION sandfire_run_resolve_dependents();

-- Indexes that named hot columns (and so made every update of a run write every index).
DROP INDEX runs_claim;
DROP INDEX runs_due;
DROP INDEX runs_lease;
DROP INDEX runs_tenant_state;
DROP INDEX runs_finished;
DROP INDEX runs_after_run;
DROP INDEX runs_schedule_active;
CREATE INDEX runs_after_run ON runs (after_run) WHERE after_run IS NOT NULL;

-- Leases live in run_queue now; runs keeps the token (not indexed, so setting it is HOT) so
-- that `running` without a lease stays impossible by a plain CHECK.
ALTER TABLE runs
    DROP CONSTRAINT lease_iff_running,
    DROP COLUMN runner_id,
    DROP COLUMN lease_expires_at,
    ADD CONSTRAINT lease_iff_running CHECK ((state = 'running') = (lease_token IS NOT NULL)),
    -- Why the run was created (the first entry of its history, derived for runs created
    -- `enqueued`).
    ADD COLUMN origin text NOT NULL DEFAULT '',
    -- Set when a continuation starts waiting for this run, so ending a run without any looks
    -- for none.
    ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;
-- Room on every page for one more version of each of its rows: a claim or a completion
-- updates whole pages of runs in one statement, and an update is HOT only if the new version
-- fits on the same page (the previous statement's old versions are pruned by then).
ALTER TABLE runs SET (fillfactor = 50);

-- Foreign keys from runs to the shared tenant, job and batch rows cost a lookup and a KEY SHARE
-- lock on the shared row per inserted run (concurrent enqueues then contend on it). The runner
-- validates the tenant, job, version and batch before it inserts; runs are deleted by
-- retention and by the API, never by cascade from a tenant or job.
ALTER TABLE runs
    DROP CONSTRAINT runs_tenant_id_fkey,
    DROP CONSTRAINT runs_job_id_fkey,
    DROP CONSTRAINT runs_job_id_version_fkey,
    DROP CONSTRAINT runs_batch_id_fkey,
    DROP CONSTRAINT runs_after_batch_fkey;

-- Foreign keys from the child tables cost one lookup per inserted row; their rows are deleted
-- together with their run by the statements that delete runs (control_delete, prune_runs).
ALTER TABLE attempts DROP CONSTRAINT attempts_run_id_fkey;
ALTER TABLE attempts DROP COLUMN lease_token;
ALTER TABLE run_events DROP CONSTRAINT run_events_run_id_fkey;
ALTER TABLE logs DROP CONSTRAINT logs_run_id_fkey;

-- History rows are read per run in time order; the identity key only cost an index write.
DROP INDEX run_events_run;
ALTER TABLE run_events DROP CONSTRAINT run_events_pkey;
ALTER TABLE run_events DROP COLUMN id;
CREATE INDEX run_events_run ON run_events (run_id, at);

-- Batch progress as counters, updated once per statement and batch (never a rescan).
ALTER TABLE batches
    -- Members not yet ended.
    ADD COLUMN pending integer NOT NULL DEFAULT 0 CHECK (pending >= 0),
    -- Members that ended other than succeeded.
    ADD COLUMN unsuccessful integer NOT NULL DEFAULT 0 CHECK (unsuccessful >= 0);
UPDATE batches b
SET pending = (SELECT count(*) FROM runs r
               WHERE r.batch_id = b.id AND r.state NOT IN ('succeeded', 'failed', 'cancelled')),
    unsuccessful = (SELECT count(*) FROM runs r
                    WHERE r.batch_id = b.id AND r.state IN ('failed', 'cancelled'));

-- Tenants share claims round-robin, in proportion to their weight (admin-set).
ALTER TABLE tenants ADD COLUMN weight integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 100);

-- The hot table. `state` mirrors runs.state for the four states a row exists in.
CREATE TABLE run_queue (
    run_id           uuid PRIMARY KEY,
    tenant_id        bigint NOT NULL,
    queue            text NOT NULL,
    priority         smallint NOT NULL,
    -- When the run is (or was) due.
    due_at           timestamptz NOT NULL,
    state            run_state NOT NULL,
    schedule_id      bigint,
    -- Who holds the run while it is running, and until when (extended by heartbeats).
    runner_id        uuid,
    lease_token      uuid,
    lease_expires_at timestamptz,
    CONSTRAINT queued_state CHECK (state IN ('scheduled', 'retrying', 'enqueued', 'running')),
    CONSTRAINT lease_iff_running
        CHECK ((state = 'running') = (lease_token IS NOT NULL AND runner_id IS NOT NULL
                                      AND lease_expires_at IS NOT NULL))
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01,
        autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.02);
-- Ready runs, by queue, then tenant (claims serve tenants round-robin), then priority.
CREATE INDEX run_queue_ready ON run_queue (queue, tenant_id, priority DESC, due_at, run_id)
    WHERE state = 'enqueued';
CREATE INDEX run_queue_due ON run_queue (due_at) WHERE state IN ('scheduled', 'retrying');
-- Held runs: per tenant and queue (concurrency limits), with the lease (rescue).
CREATE INDEX run_queue_leased ON run_queue (tenant_id, queue) INCLUDE (lease_expires_at)
    WHERE state = 'running';
CREATE INDEX run_queue_schedule ON run_queue (schedule_id) WHERE schedule_id IS NOT NULL;

INSERT INTO run_queue (run_id, tenant_id, queue, priority, due_at, state, schedule_id)
SELECT id, tenant_id, queue, priority, scheduled_at, state, schedule_id
FROM runs WHERE state IN ('scheduled', 'retrying', 'enqueued');
-- A run that was running when this migration ran is handed back (its lease is gone).
INSERT INTO run_queue (run_id, tenant_id, queue, priority, due_at, state, schedule_id)
SELECT id, tenant_id, queue, priority, now(), 'enqueued', schedule_id
FROM runs WHERE state = 'running';
-- Its attempt stays recorded (as lost) and does not count: the run gets one more.
INSERT INTO run_events (run_id, at, from_state, to_state, reason)
SELECT id, now(), 'running', 'enqueued', 'handed back by the 0005 migration'
FROM runs WHERE state = 'running';
UPDATE runs SET state = 'enqueued', max_attempts = max_attempts + 1, lease_token = NULL,
                state_reason = 'handed back by the 0005 migration'
WHERE state = 'running';
UPDATE attempts SET finished_at = now(), outcome = 'runner_lost',
                    error = 'the runner was upgraded while this attempt ran'
WHERE finished_at IS NULL;
-- Why each run was created (the first entry of its history), then the history entries that
-- are derived from now on (see point 4 of the header): stored once, they would show twice.
UPDATE runs r
SET origin = coalesce((SELECT e.reason FROM run_events e
                       WHERE e.run_id = r.id AND e.from_state IS NULL
                       ORDER BY e.at LIMIT 1), r.state_reason, '');
DELETE FROM run_events
WHERE (from_state IS NULL AND to_state = 'enqueued')
   OR (from_state = 'enqueued' AND to_state = 'running')
   OR (from_state = 'running' AND to_state = 'succeeded');

-- The state machine: which transitions are allowed.
CREATE FUNCTION sandfire_transition_allowed(from_state run_state, to_state run_state)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE from_state
        WHEN 'scheduled' THEN to_state IN ('enqueued', 'cancelled')
        WHEN 'awaiting'  THEN to_state IN ('enqueued', 'cancelled')
        WHEN 'enqueued'  THEN to_state IN ('running', 'scheduled', 'cancelled')
        WHEN 'running'   THEN to_state IN ('succeeded', 'failed', 'retrying', 'scheduled',
                                           'enqueued', 'cancelled')
        WHEN 'retrying'  THEN to_state IN ('enqueued', 'cancelled')
        WHEN 'succeeded' THEN false
        WHEN 'failed'    THEN to_state IN ('enqueued')
        WHEN 'cancelled' THEN to_state IN ('enqueued')
    END
$$;

-- Transitions derived instead of stored (see the header).
CREATE FUNCTION sandfire_transition_routine(from_state run_state, to_state run_state)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (from_state = 'enqueued' AND to_state = 'running')
        OR (from_state = 'running' AND to_state = 'succeeded')
$$;

-- Raises `message` with SQLSTATE `code` (usable inside a query).
CREATE FUNCTION sandfire_raise(code text, message text) RETURNS run_state
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', message USING ERRCODE = code;
END
$$;

-- Starts or cancels the continuations waiting for the runs in `ended` (run ids with their
-- final state and output), then those of any continuation this cancelled, and so on: a loop,
-- not recursion, so a chain of any length resolves in one statement.
CREATE FUNCTION sandfire_resolve_dependents(ended uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    frontier uuid[] := ended;
BEGIN
    WHILE frontier IS NOT NULL AND cardinality(frontier) > 0 LOOP
        WITH parent AS (
            SELECT p.id, p.state, p.output
            FROM runs p
            WHERE p.id = ANY(frontier)
        ), resolved AS (
            UPDATE runs c
            SET state = CASE WHEN c.after_on = 'finished' OR c.after_on = p.state::text
                             THEN 'enqueued'::run_state ELSE 'cancelled'::run_state END,
                input = CASE WHEN c.input_from_parent AND (c.after_on = 'finished'
                                                           OR c.after_on = p.state::text)
                             THEN coalesce(p.output, 'null'::jsonb) ELSE c.input END,
                finished_at = CASE WHEN c.after_on = 'finished' OR c.after_on = p.state::text
                                   THEN NULL ELSE now() END,
                error = CASE WHEN c.after_on = 'finished' OR c.after_on = p.state::text THEN NULL
                             ELSE format('parent run %s ended %s; this continuation waited for %s',
                                         p.id, p.state, c.after_on) END,
                scheduled_at = now(),
                state_reason = format('parent run %s %s', p.id, p.state)
            FROM parent p
            WHERE c.after_run = p.id AND c.state = 'awaiting'
            RETURNING c.id, c.state, c.has_dependents
        )
        SELECT array_agg(id) FILTER (WHERE state = 'cancelled' AND has_dependents)
        INTO frontier
        FROM resolved;
    END LOOP;
END
$$;

-- After every INSERT on runs (once per statement).
CREATE FUNCTION sandfire_runs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT id, state INTO bad FROM new_runs
    WHERE state NOT IN ('scheduled', 'awaiting', 'enqueued') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'a run cannot be created in state %', bad.state
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO run_queue (run_id, tenant_id, queue, priority, due_at, state, schedule_id)
    SELECT id, tenant_id, queue, priority, scheduled_at, state, schedule_id
    FROM new_runs WHERE state IN ('scheduled', 'enqueued');
    -- Only runs not created `enqueued` get a stored first entry (the rest is derived).
    INSERT INTO run_events (run_id, at, from_state, to_state, reason)
    SELECT id, created_at, NULL, state, origin FROM new_runs WHERE state <> 'enqueued';
    -- A continuation marks its parent, so the parent's end looks for continuations.
    UPDATE runs p SET has_dependents = true
    WHERE p.id IN (SELECT after_run FROM new_runs WHERE after_run IS NOT NULL)
      AND NOT p.has_dependents;
    PERFORM pg_notify('sandfire_enqueued', q)
    FROM (SELECT DISTINCT queue AS q FROM new_runs WHERE state = 'enqueued') x;
    IF EXISTS (SELECT 1 FROM new_runs WHERE state = 'scheduled') THEN
        PERFORM pg_notify('sandfire_scheduled', '');
    END IF;
    RETURN NULL;
END
$$;

-- Batch progress from one statement's member transitions: per batch, how many members ended
-- (negative: re-opened by a retry) and how many more ended other than succeeded. One update
-- per batch, locked in a stable order (two statements touching the same batches never
-- deadlock); the statement that ends the last member starts or cancels the batch's
-- continuations, so they start exactly once. Returns the continuations it cancelled that have
-- continuations of their own.
CREATE FUNCTION sandfire_batch_progress(batch_ids uuid[], ended int[], unsuccessful int[])
RETURNS uuid[] LANGUAGE plpgsql AS $$
DECLARE
    finished uuid[];
    cancelled uuid[];
BEGIN
    WITH delta AS (
        SELECT d.batch_id, sum(d.ended) AS ended, sum(d.unsuccessful) AS unsuccessful
        FROM unnest(batch_ids, ended, unsuccessful) AS d(batch_id, ended, unsuccessful)
        GROUP BY d.batch_id
    ), locked AS (
        SELECT b.id FROM batches b
        WHERE b.id IN (SELECT batch_id FROM delta)
        ORDER BY b.id
        FOR NO KEY UPDATE
    ), counted AS (
        UPDATE batches b
        SET pending = b.pending - d.ended,
            unsuccessful = b.unsuccessful + d.unsuccessful,
            finished_at = CASE WHEN b.pending - d.ended = 0
                               THEN coalesce(b.finished_at, now()) END
        FROM delta d, locked l
        WHERE b.id = d.batch_id AND l.id = b.id
        RETURNING b.id, (b.pending = 0 AND d.ended > 0) AS just_finished
    )
    SELECT array_agg(id) FILTER (WHERE just_finished) INTO finished FROM counted;
    IF finished IS NULL THEN
        RETURN NULL;
    END IF;
    -- Only for the batches that just finished (by index: never a scan of every run).
    WITH b AS (
        SELECT x.id, x.unsuccessful, x.cancelled_at FROM batches x WHERE x.id = ANY (finished)
    ), resolved AS (
        UPDATE runs c
        SET state = CASE WHEN b.cancelled_at IS NULL
                          AND (c.after_on = 'finished'
                               OR (c.after_on = 'succeeded' AND b.unsuccessful = 0)
                               OR (c.after_on = 'failed' AND b.unsuccessful > 0))
                         THEN 'enqueued'::run_state ELSE 'cancelled'::run_state END,
            finished_at = CASE WHEN b.cancelled_at IS NULL
                                AND (c.after_on = 'finished'
                                     OR (c.after_on = 'succeeded' AND b.unsuccessful = 0)
                                     OR (c.after_on = 'failed' AND b.unsuccessful > 0))
                               THEN NULL ELSE now() END,
            error = CASE WHEN b.cancelled_at IS NOT NULL
                         THEN format('batch %s was cancelled', b.id)
                         WHEN c.after_on = 'succeeded' AND b.unsuccessful > 0
                         THEN format('not every run of batch %s succeeded', b.id)
                         WHEN c.after_on = 'failed' AND b.unsuccessful = 0
                         THEN format('every run of batch %s succeeded', b.id)
                         ELSE NULL END,
            scheduled_at = now(),
            state_reason = format('batch %s finished', b.id)
        FROM b
        WHERE c.after_batch = ANY (finished) AND c.after_batch = b.id AND c.state = 'awaiting'
        RETURNING c.id, c.state, c.has_dependents
    )
    SELECT array_agg(id) FILTER (WHERE state = 'cancelled' AND has_dependents)
    INTO cancelled
    FROM resolved;
    RETURN cancelled;
END
$$;

-- After every UPDATE on runs (once per statement): see the header, points 3 and 4.
--
-- The hot statements are recognised from each transition table alone (no join): a claim
-- (every row enqueued -> running) has nothing to do; plain successes (every row running ->
-- succeeded) only count batch progress and resolve continuations when their runs have any.
-- Everything else pairs old and new rows in one dynamically planned query (planned for the
-- statement's real row count: a plan cached for one row would compare every pair).
CREATE FUNCTION sandfire_runs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n_rows bigint;
    to_running bigint;
    to_succeeded bigint;
    from_enqueued bigint;
    from_running bigint;
    in_batch boolean;
    with_dependents boolean;
    c record;
    b_ids uuid[];
    b_ended int[];
    b_unsuccessful int[];
    ended uuid[];
    finished uuid[];
BEGIN
    SELECT count(*), count(*) FILTER (WHERE state = 'running'),
           count(*) FILTER (WHERE state = 'succeeded'),
           coalesce(bool_or(batch_id IS NOT NULL), false),
           coalesce(bool_or(has_dependents), false)
    INTO n_rows, to_running, to_succeeded, in_batch, with_dependents
    FROM new_runs;
    SELECT count(*) FILTER (WHERE state = 'enqueued'), count(*) FILTER (WHERE state = 'running')
    INTO from_enqueued, from_running
    FROM old_runs;

    IF to_running = n_rows AND from_enqueued = n_rows THEN
        RETURN NULL;
    END IF;

    IF to_succeeded = n_rows AND from_running = n_rows THEN
        IF in_batch THEN
            SELECT array_agg(batch_id), array_agg(1), array_agg(0)
            INTO b_ids, b_ended, b_unsuccessful
            FROM new_runs WHERE batch_id IS NOT NULL;
            finished := sandfire_batch_progress(b_ids, b_ended, b_unsuccessful);
        END IF;
        IF pg_trigger_depth() = 1 AND (with_dependents OR finished IS NOT NULL) THEN
            SELECT array_agg(id) INTO ended FROM new_runs WHERE has_dependents;
            PERFORM sandfire_resolve_dependents(coalesce(ended, '{}') || coalesce(finished, '{}'));
        END IF;
        RETURN NULL;
    END IF;

    EXECUTE $q$
        SELECT count(*) FILTER (WHERE NOT sandfire_transition_allowed(o.state, n.state))
                   AS illegal,
               (array_agg(n.id) FILTER (WHERE NOT sandfire_transition_allowed(o.state, n.state)))[1]
                   AS bad_id,
               (array_agg(o.state) FILTER (WHERE NOT sandfire_transition_allowed(o.state, n.state)))[1]
                   AS bad_from,
               (array_agg(n.state) FILTER (WHERE NOT sandfire_transition_allowed(o.state, n.state)))[1]
                   AS bad_to,
               array_agg(n.id) FILTER (WHERE NOT sandfire_transition_routine(o.state, n.state))
                   AS h_ids,
               array_agg(o.state) FILTER (WHERE NOT sandfire_transition_routine(o.state, n.state))
                   AS h_from,
               array_agg(n.state) FILTER (WHERE NOT sandfire_transition_routine(o.state, n.state))
                   AS h_to,
               array_agg(n.state_reason)
                   FILTER (WHERE NOT sandfire_transition_routine(o.state, n.state)) AS h_reason,
               array_agg(n.id) FILTER (WHERE n.state IN ('scheduled', 'retrying', 'enqueued'))
                   AS waiting,
               array_agg(n.id) FILTER (WHERE o.state <> 'running'
                                         AND n.state IN ('awaiting', 'succeeded', 'failed',
                                                         'cancelled')) AS gone,
               array_agg(DISTINCT n.queue) FILTER (WHERE n.state = 'enqueued') AS queues,
               bool_or(n.state IN ('scheduled', 'retrying')) AS delayed,
               array_agg(n.batch_id) FILTER (WHERE n.batch_id IS NOT NULL
                   AND (n.state IN ('succeeded', 'failed', 'cancelled'))
                       <> (o.state IN ('succeeded', 'failed', 'cancelled'))) AS b_ids,
               array_agg(CASE WHEN n.state IN ('succeeded', 'failed', 'cancelled') THEN 1 ELSE -1 END)
                   FILTER (WHERE n.batch_id IS NOT NULL
                       AND (n.state IN ('succeeded', 'failed', 'cancelled'))
                           <> (o.state IN ('succeeded', 'failed', 'cancelled'))) AS b_ended,
               array_agg(CASE WHEN n.state IN ('failed', 'cancelled')
                                   AND o.state NOT IN ('failed', 'cancelled') THEN 1
                              WHEN o.state IN ('failed', 'cancelled')
                                   AND n.state NOT IN ('failed', 'cancelled') THEN -1
                              ELSE 0 END)
                   FILTER (WHERE n.batch_id IS NOT NULL
                       AND (n.state IN ('succeeded', 'failed', 'cancelled'))
                           <> (o.state IN ('succeeded', 'failed', 'cancelled'))) AS b_unsuccessful,
               array_agg(n.id) FILTER (WHERE n.has_dependents
                                         AND n.state IN ('succeeded', 'failed', 'cancelled'))
                   AS dependents
        FROM old_runs o JOIN new_runs n ON n.id = o.id
        WHERE o.state <> n.state
    $q$ INTO c;

    IF c.illegal > 0 THEN
        RAISE EXCEPTION 'run % cannot move from % to %', c.bad_id, c.bad_from, c.bad_to
            USING ERRCODE = 'check_violation';
    END IF;

    IF c.h_ids IS NOT NULL THEN
        INSERT INTO run_events (run_id, at, from_state, to_state, reason)
        SELECT h.id, clock_timestamp(), h.f, h.t, h.reason
        FROM unnest(c.h_ids, c.h_from, c.h_to, c.h_reason) AS h(id, f, t, reason);
    END IF;

    -- run_queue follows every change into a waiting state (the claim, completion and rescue
    -- statements handle moves into and out of `running` themselves).
    IF c.waiting IS NOT NULL THEN
        INSERT INTO run_queue (run_id, tenant_id, queue, priority, due_at, state, schedule_id)
        SELECT r.id, r.tenant_id, r.queue, r.priority, r.scheduled_at, r.state, r.schedule_id
        FROM runs r WHERE r.id = ANY (c.waiting)
        ON CONFLICT (run_id) DO UPDATE
        SET state = EXCLUDED.state, due_at = EXCLUDED.due_at, queue = EXCLUDED.queue,
            priority = EXCLUDED.priority, runner_id = NULL, lease_token = NULL,
            lease_expires_at = NULL;
    END IF;
    IF c.gone IS NOT NULL THEN
        DELETE FROM run_queue WHERE run_id = ANY (c.gone);
    END IF;

    IF c.queues IS NOT NULL THEN
        PERFORM pg_notify('sandfire_enqueued', q) FROM unnest(c.queues) AS q;
    END IF;
    IF c.delayed THEN
        PERFORM pg_notify('sandfire_scheduled', '');
    END IF;

    -- Members whose ended-ness changed (+1 ended, -1 re-opened by a retry).
    IF c.b_ids IS NOT NULL THEN
        finished := sandfire_batch_progress(c.b_ids, c.b_ended, c.b_unsuccessful);
    END IF;

    -- Continuations of runs that ended here. Only the outermost statement resolves them (in a
    -- loop), so a chain of any length never nests triggers.
    IF pg_trigger_depth() = 1 AND (c.dependents IS NOT NULL OR finished IS NOT NULL) THEN
        PERFORM sandfire_resolve_dependents(coalesce(c.dependents, '{}')
                                            || coalesce(finished, '{}'));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_inserted AFTER INSERT ON runs
    REFERENCING NEW TABLE AS new_runs
    FOR EACH STATEMENT EXECUTE FUNCTION sandfire_runs_inserted();
CREATE TRIGGER runs_updated AFTER UPDATE ON runs
    REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs
    FOR EACH STATEMENT EXECUTE FUNCTION sandfire_runs_updated();

-- A continuation of a run: waits while the parent runs, starts at once when the parent already
-- met the condition, is refused (SF001) when it never can. Only rows with a parent pay for it.
CREATE OR REPLACE FUNCTION sandfire_run_await_parent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent record;
BEGIN
    SELECT id, state, output INTO parent
    FROM runs WHERE id = NEW.after_run AND tenant_id = NEW.tenant_id
    FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no run with id % to wait for', NEW.after_run USING ERRCODE = 'SF002';
    END IF;
    IF parent.state NOT IN ('succeeded', 'failed', 'cancelled') THEN
        NEW.state := 'awaiting';
        RETURN NEW;
    END IF;
    IF NEW.after_on = 'finished' OR NEW.after_on = parent.state::text THEN
        NEW.state := 'enqueued';
        IF NEW.input_from_parent THEN
            NEW.input := coalesce(parent.output, 'null'::jsonb);
        END IF;
        NEW.state_reason := format('parent run %s already %s', parent.id, parent.state);
        NEW.origin := NEW.state_reason;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'parent run % already ended %, so a continuation on % could never start',
        parent.id, parent.state, NEW.after_on USING ERRCODE = 'SF001';
END
$$;
CREATE TRIGGER runs_await_parent BEFORE INSERT ON runs
    FOR EACH ROW WHEN (NEW.after_run IS NOT NULL)
    EXECUTE FUNCTION sandfire_run_await_parent();

-- The smallest UUIDv7 of the millisecond `ts` falls in: run ids older than it were created
-- before `ts` (retention reads ended runs in primary-key order with it).
CREATE FUNCTION sandfire_uuid_v7_floor(ts timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (lpad(to_hex(floor(extract(epoch FROM ts) * 1000)::bigint), 12, '0')
            || '00000000000000000000')::uuid
$$;
