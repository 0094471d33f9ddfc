-- Due delayed, snoozed and retrying runs become ready (the runs_updated trigger moves their
-- run_queue rows along). SKIP LOCKED: safe with many runners.
WITH due AS (
    SELECT run_id
    FROM run_queue
    WHERE state IN ('scheduled', 'retrying') AND due_at <= now()
    ORDER BY due_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE runs r
SET state = 'enqueued',
    state_reason = CASE WHEN r.state = 'retrying' THEN 'retry due' ELSE 'due' END
FROM due
WHERE r.id = due.run_id AND r.state IN ('scheduled', 'retrying')
