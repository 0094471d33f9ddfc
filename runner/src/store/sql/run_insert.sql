-- Insert runs from parallel arrays and return them as inserted (a worker may claim them before
-- the caller reads them again). A run due later is 'scheduled' (by the database clock); a
-- continuation's state is decided by the runs_await_parent trigger. A run given its job row's
-- version ($19, the job's xmin when its parameters were read) is left out if the job's row
-- changed since (a new version, new defaults): the caller sees it missing and reads the job
-- again.
-- One INSERT ... RETURNING, no CTE around it: a single enqueue is one row, and for one row the
-- statement's fixed cost is most of it (a CTE with joins back to jobs and schedules cost about
-- 20 µs more a statement). The job's name is one index probe per row; this statement never
-- sets a schedule.
-- The arrays are unnested as set-returning functions of the select list, which advance in step
-- (one row per index). `unnest(a, b, ...)` in FROM would first copy each array into a
-- tuplestore of its own: about 50 µs more per statement and twice the cost per row.
INSERT INTO runs (id, tenant_id, job_id, version, state, queue, priority, input, max_attempts,
                  timeout_ms, fuel, memory_mb, backoff_base_ms, state_reason, origin,
                  scheduled_at, after_run, after_on, input_from_parent)
SELECT i.id, i.tenant_id, i.job_id, i.version,
       CASE WHEN i.after_run IS NOT NULL THEN 'awaiting'::run_state
            WHEN d.due > now() THEN 'scheduled'::run_state
            ELSE 'enqueued'::run_state END,
       i.queue, i.priority, i.input, i.max_attempts, i.timeout_ms, i.fuel, i.memory_mb,
       i.backoff_base_ms, i.reason, i.reason, greatest(d.due, now()), i.after_run, i.after_on,
       i.input_from_parent
FROM (SELECT unnest($1::uuid[]) AS id, unnest($2::int8[]) AS tenant_id,
             unnest($3::int8[]) AS job_id, unnest($4::int4[]) AS version,
             unnest($5::text[]) AS queue, unnest($6::int2[]) AS priority,
             unnest($7::jsonb[]) AS input, unnest($8::int4[]) AS max_attempts,
             unnest($9::int8[]) AS timeout_ms, unnest($10::int8[]) AS fuel,
             unnest($11::int4[]) AS memory_mb, unnest($12::int8[]) AS backoff_base_ms,
             unnest($13::text[]) AS reason, unnest($14::int8[]) AS delay_ms,
             unnest($15::timestamptz[]) AS run_at, unnest($16::uuid[]) AS after_run,
             unnest($17::text[]) AS after_on, unnest($18::bool[]) AS input_from_parent,
             unnest($19::int8[]) AS job_row_version) i
CROSS JOIN LATERAL (
    SELECT coalesce(i.run_at, now() + make_interval(secs => coalesce(i.delay_ms, 0)::float8 / 1000))
        AS due
) d
WHERE i.job_row_version IS NULL
   OR EXISTS (SELECT 1 FROM jobs j
              WHERE j.id = i.job_id AND j.xmin::text::int8 = i.job_row_version)
RETURNING id, (SELECT j.name FROM jobs j WHERE j.id = runs.job_id) AS job, version, state, queue,
          priority, input, output, error, attempt, max_attempts, timeout_ms, fuel, memory_mb,
          backoff_base_ms, scheduled_at, created_at, started_at, finished_at, progress,
          progress_message, batch_id, after_run, after_batch, after_on, snoozes,
          cancel_requested_at, NULL::text AS schedule, fire_at
