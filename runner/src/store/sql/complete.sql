-- The guarded write: end attempts whose lease token still holds their run. A completion whose
-- run was rescued, cancelled or re-claimed in the meantime changes nothing on the run (its
-- attempt record is still closed if nothing closed it yet).
WITH input AS (
    SELECT *
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::text[], $6::int8[],
                $7::bool[], $8::text[], $9::text[], $10::int8[], $11::int8[], $12::int8[],
                $13::int2[], $14::text[], $15::bool[])
        AS i(run_id, lease_token, state, output, error, delay_ms, refund_attempt, reason,
             outcome, fuel_used, peak_memory, duration_ms, progress, progress_message, snoozed)
), done AS (
    UPDATE runs r
    SET state = i.state::run_state,
        output = i.output,
        error = i.error,
        scheduled_at = CASE WHEN i.delay_ms IS NULL THEN r.scheduled_at
                            ELSE now() + make_interval(secs => i.delay_ms::float8 / 1000) END,
        finished_at = CASE WHEN i.state IN ('succeeded', 'failed', 'cancelled') THEN now() END,
        max_attempts = r.max_attempts + CASE WHEN i.refund_attempt THEN 1 ELSE 0 END,
        snoozes = r.snoozes + CASE WHEN i.snoozed THEN 1 ELSE 0 END,
        runner_id = NULL,
        lease_token = NULL,
        lease_expires_at = NULL,
        progress = coalesce(i.progress, r.progress),
        progress_message = coalesce(i.progress_message, r.progress_message),
        state_reason = i.reason
    FROM input i
    WHERE r.id = i.run_id AND r.state = 'running' AND r.lease_token = i.lease_token
    RETURNING r.id
), closed AS (
    UPDATE attempts a
    SET finished_at = now(),
        outcome = i.outcome::attempt_outcome,
        error = i.error,
        fuel_used = i.fuel_used,
        peak_memory = i.peak_memory,
        duration_ms = i.duration_ms
    FROM input i
    WHERE a.lease_token = i.lease_token AND a.finished_at IS NULL
)
SELECT id FROM done
