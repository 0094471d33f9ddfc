-- The guarded write: end the attempts whose lease token still holds their run. The run's
-- run_queue row is deleted only where the token matches (primary key + token, nothing else
-- scanned); a completion whose run was rescued, cancelled or re-claimed meanwhile changes
-- nothing. The attempt is recorded here, once, with the run's new state in the same
-- statement; `record` is false for a run handed back before its attempt started, which also
-- gives the attempt number back. A run going back to a waiting state gets its run_queue row
-- again from the runs_updated trigger. The attempt's start and end are the database's now minus
-- how long ago the runner saw them happen (a completion may wait in the completer's batch;
-- a claimed run may wait in the runner's buffer before its attempt starts).
-- The arrays are unnested as set-returning functions of the select list, which advance in step
-- (one row per index). `unnest(a, b, ...)` in FROM would first copy each array into a
-- tuplestore of its own: about 50 µs more per statement and twice the cost per row.
WITH input AS (
    SELECT unnest($1::uuid[]) AS run_id, unnest($2::uuid[]) AS lease_token,
           unnest($3::text[]) AS state, unnest($4::text[]) AS output,
           unnest($5::text[]) AS error, unnest($6::int8[]) AS delay_ms,
           unnest($7::bool[]) AS refund_attempt, unnest($8::bool[]) AS snoozed,
           unnest($9::text[]) AS reason, unnest($10::text[]) AS outcome,
           unnest($11::int8[]) AS fuel_used, unnest($12::int8[]) AS peak_memory,
           unnest($13::int8[]) AS duration_ms, unnest($14::int2[]) AS progress,
           unnest($15::text[]) AS progress_message, unnest($16::bool[]) AS record,
           unnest($17::timestamptz[]) AS started_at, unnest($18::timestamptz[]) AS ended_at,
           unnest($19::text[]) AS outbound
), released AS (
    -- By primary key (ANY keeps the plan on the index whatever the statistics say). A token
    -- is only ever set on its own run's row, so the pair is matched exactly.
    DELETE FROM run_queue q
    WHERE q.run_id = ANY ($1::uuid[]) AND q.lease_token = ANY ($2::uuid[])
    RETURNING q.run_id, q.runner_id, q.lease_token
), done AS (
    UPDATE runs r
    SET state = i.state::run_state,
        output = i.output::jsonb,
        error = i.error,
        scheduled_at = CASE WHEN i.delay_ms IS NULL THEN r.scheduled_at
                            ELSE now() + make_interval(secs => i.delay_ms::float8 / 1000) END,
        started_at = CASE WHEN i.record THEN i.started_at ELSE r.started_at END,
        finished_at = CASE WHEN i.state IN ('succeeded', 'failed', 'cancelled')
                           THEN i.ended_at END,
        attempt = r.attempt - CASE WHEN i.record THEN 0 ELSE 1 END,
        max_attempts = r.max_attempts + CASE WHEN i.refund_attempt THEN 1 ELSE 0 END,
        snoozes = r.snoozes + CASE WHEN i.snoozed THEN 1 ELSE 0 END,
        -- A refunded attempt going to `retrying` is a runner fault (see Transition::RunnerFault).
        runner_faults = r.runner_faults
            + CASE WHEN i.refund_attempt AND i.state = 'retrying' THEN 1 ELSE 0 END,
        progress = coalesce(i.progress, r.progress),
        progress_message = coalesce(i.progress_message, r.progress_message),
        state_reason = i.reason,
        lease_token = NULL
    FROM input i
    JOIN released x ON x.run_id = i.run_id AND x.lease_token = i.lease_token
    WHERE r.id = x.run_id
    RETURNING r.id, r.attempt, r.started_at, x.runner_id, i.record, i.ended_at
), recorded AS (
    INSERT INTO attempts (run_id, number, runner_id, started_at, finished_at, outcome, error,
                          fuel_used, peak_memory, duration_ms, outbound)
    SELECT d.id, d.attempt, d.runner_id, d.started_at, d.ended_at, i.outcome::attempt_outcome,
           i.error, i.fuel_used, i.peak_memory, i.duration_ms, i.outbound::jsonb
    FROM done d
    JOIN input i ON i.run_id = d.id
    WHERE d.record
)
SELECT id FROM done
