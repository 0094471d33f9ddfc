-- Insert one run and return it as inserted: `run_insert.sql` for a single run, with its values
-- as parameters instead of one-element arrays. A single enqueue is the common case of the
-- group commit (one client alone makes groups of one), and for one row the statement's fixed
-- cost is most of it: unnesting 19 arrays cost about 20 µs more a statement. Same rules as
-- `run_insert.sql`: keep the two in step.
INSERT INTO runs (id, tenant_id, job_id, version, state, queue, priority, input, max_attempts,
                  timeout_ms, fuel, memory_mb, backoff_base_ms, state_reason, origin,
                  scheduled_at, after_run, after_on, input_from_parent)
SELECT $1::uuid, $2::int8, $3::int8, $4::int4,
       CASE WHEN $16::uuid IS NOT NULL THEN 'awaiting'::run_state
            WHEN d.due > now() THEN 'scheduled'::run_state
            ELSE 'enqueued'::run_state END,
       $5::text, $6::int2, $7::jsonb, $8::int4, $9::int8, $10::int8, $11::int4, $12::int8,
       $13::text, $13::text, greatest(d.due, now()), $16::uuid, $17::text, $18::bool
FROM (SELECT coalesce($15::timestamptz,
                      now() + make_interval(secs => coalesce($14::int8, 0)::float8 / 1000))
          AS due) d
WHERE $19::int8 IS NULL
   OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = $3::int8 AND j.xmin::text::int8 = $19::int8)
RETURNING id, (SELECT j.name FROM jobs j WHERE j.id = runs.job_id) AS job, version, state, queue,
          priority, input, output, error, attempt, max_attempts, timeout_ms, fuel, memory_mb,
          backoff_base_ms, scheduled_at, created_at, started_at, finished_at, progress,
          progress_message, batch_id, after_run, after_batch, after_on, snoozes,
          cancel_requested_at, NULL::text AS schedule, fire_at
