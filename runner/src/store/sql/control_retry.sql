-- Re-enqueue failed or cancelled run $2 of tenant $1 as a new attempt ($3 says who asked, e.g.
-- 'via API'): it gets at least one
-- attempt more than it has used. A member of a finished batch re-opens the batch's progress
-- (its continuations were already decided and are not run again).
WITH retried AS (
    UPDATE runs
    SET state = 'enqueued',
        finished_at = NULL,
        output = NULL,
        error = NULL,
        cancel_requested_at = NULL,
        scheduled_at = now(),
        max_attempts = greatest(max_attempts, attempt + 1),
        progress = NULL,
        progress_message = NULL,
        state_reason = 'retried ' || $3
    WHERE tenant_id = $1 AND id = $2 AND state IN ('failed', 'cancelled')
    RETURNING id, batch_id
), reopened AS (
    UPDATE batches b
    SET finished_at = NULL
    FROM retried
    WHERE b.tenant_id = $1 AND b.id = retried.batch_id
)
SELECT id FROM retried
