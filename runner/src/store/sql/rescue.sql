-- Rescue: attempts whose lease expired (their runner died, hung or lost the database) end as
-- 'runner_lost'; the attempt counts, and the run is retried after $3 ms (the runner's one
-- backoff function decided it) while attempts remain, failed otherwise, or cancelled when a
-- cancel was requested. Re-checks the expiry under the row lock, so a lease renewed since it
-- was read is left alone. The lost runner's late completion is then rejected by the guarded
-- write (its run_queue row is gone).
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int8[]) AS i(run_id, lease_token, delay_ms)
), lost AS (
    DELETE FROM run_queue q
    WHERE q.run_id = ANY ($1::uuid[]) AND q.lease_token = ANY ($2::uuid[])
      AND q.state = 'running' AND q.lease_expires_at < now()
    RETURNING q.run_id, q.runner_id, q.lease_token
), rescued AS (
    UPDATE runs r
    SET state = CASE WHEN r.cancel_requested_at IS NOT NULL THEN 'cancelled'::run_state
                     WHEN r.attempt < r.max_attempts THEN 'retrying'::run_state
                     ELSE 'failed'::run_state END,
        scheduled_at = CASE WHEN r.cancel_requested_at IS NULL AND r.attempt < r.max_attempts
                            THEN now() + make_interval(secs => i.delay_ms::float8 / 1000)
                            ELSE r.scheduled_at END,
        finished_at = CASE WHEN r.cancel_requested_at IS NOT NULL OR r.attempt >= r.max_attempts
                           THEN now() END,
        error = 'runner lost: the runner executing attempt ' || r.attempt
                || ' stopped renewing its lease',
        state_reason = format('attempt %s rescued: runner %s lost its lease', r.attempt,
                              l.runner_id),
        lease_token = NULL
    FROM lost l
    JOIN input i ON i.run_id = l.run_id AND i.lease_token = l.lease_token
    WHERE r.id = l.run_id
    RETURNING r.id, r.attempt, r.started_at, l.runner_id, r.tenant_id, r.job_id, r.state
), recorded AS (
    INSERT INTO attempts (run_id, number, runner_id, started_at, finished_at, outcome, error)
    SELECT id, attempt, runner_id, started_at, now(), 'runner_lost',
           'the runner executing this attempt stopped renewing its lease'
    FROM rescued
    ON CONFLICT (run_id, number) DO NOTHING
    RETURNING run_id
), counted AS (
    -- The rollup of ended attempts (`run_stats`), under the lost runner's id: that runner never
    -- writes a `runner_lost` row itself, so nothing else contends for these rows.
    INSERT INTO run_stats AS s (width_s, bucket, tenant_id, job_id, runner_id, outcome,
                                attempts, runs_ended, fuel_used, duration_ms, peak_memory_max)
    SELECT w.width_s, to_timestamp(floor(extract(epoch FROM now()) / w.width_s) * w.width_s),
           x.tenant_id, x.job_id, x.runner_id, 'runner_lost', count(*),
           count(*) FILTER (WHERE x.state IN ('failed', 'cancelled')), 0,
           coalesce(sum(greatest(extract(epoch FROM now() - x.started_at) * 1000, 0)), 0)::int8,
           0
    FROM rescued x
    -- Only attempts this statement recorded (not one that already had its row).
    JOIN recorded a ON a.run_id = x.id
    CROSS JOIN (VALUES (10), (3600), (86400)) AS w(width_s)
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (width_s, bucket, tenant_id, job_id, runner_id, outcome) DO UPDATE
    SET attempts = s.attempts + EXCLUDED.attempts,
        runs_ended = s.runs_ended + EXCLUDED.runs_ended,
        duration_ms = s.duration_ms + EXCLUDED.duration_ms
)
SELECT id FROM rescued
