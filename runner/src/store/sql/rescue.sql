-- Rescue: attempts whose lease expired (their runner died, hung or lost the database) end as
-- 'runner_lost'; the attempt counts, and the run is retried with backoff while attempts remain,
-- failed otherwise, or cancelled when a cancel was requested. The lost runner's late
-- completion is then rejected by the guarded write (its lease token is gone).
WITH lost AS (
    SELECT id, lease_token, runner_id
    FROM runs
    WHERE state = 'running' AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), closed AS (
    UPDATE attempts a
    SET finished_at = now(),
        outcome = 'runner_lost',
        error = 'the runner executing this attempt stopped renewing its lease'
    FROM lost
    WHERE a.lease_token = lost.lease_token AND a.finished_at IS NULL
), rescued AS (
    UPDATE runs r
    SET state = CASE WHEN r.cancel_requested_at IS NOT NULL THEN 'cancelled'::run_state
                     WHEN r.attempt < r.max_attempts THEN 'retrying'::run_state
                     ELSE 'failed'::run_state END,
        scheduled_at = CASE WHEN r.cancel_requested_at IS NULL AND r.attempt < r.max_attempts
                            THEN now() + make_interval(secs =>
                                 least($2::float8, r.backoff_base_ms * power(2, r.attempt - 1))
                                 * (1 + random() * 0.25) / 1000)
                            ELSE r.scheduled_at END,
        finished_at = CASE WHEN r.cancel_requested_at IS NOT NULL OR r.attempt >= r.max_attempts
                           THEN now() END,
        error = 'runner lost: the runner executing attempt ' || r.attempt
                || ' stopped renewing its lease',
        runner_id = NULL,
        lease_token = NULL,
        lease_expires_at = NULL,
        state_reason = format('attempt %s rescued: runner %s lost its lease', r.attempt,
                              lost.runner_id)
    FROM lost
    WHERE r.id = lost.id
    RETURNING r.id
)
SELECT id FROM rescued
