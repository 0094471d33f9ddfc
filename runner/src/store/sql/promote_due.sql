-- Due delayed, snoozed and retrying runs become ready. SKIP LOCKED: safe with many runners.
WITH due AS (
    SELECT id
    FROM runs
    WHERE state IN ('scheduled', 'retrying') AND scheduled_at <= now()
    ORDER BY scheduled_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE runs r
SET state = 'enqueued',
    state_reason = CASE WHEN r.state = 'retrying' THEN 'retry due' ELSE 'due' END
FROM due
WHERE r.id = due.id
