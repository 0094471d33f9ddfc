-- Lock the unfinished members of batch $2 (tenant $1) in a stable order, their run_queue rows
-- first (the order claims and completions take them in), so a cancel and a concurrent claim or
-- completion of a member queue up instead of deadlocking.
WITH members AS (
    SELECT id FROM runs
    WHERE tenant_id = $1 AND batch_id = $2 AND state NOT IN ('succeeded', 'failed', 'cancelled')
), queued AS (
    SELECT q.run_id FROM run_queue q
    WHERE q.run_id IN (SELECT id FROM members)
    ORDER BY q.run_id
    FOR UPDATE OF q
)
SELECT r.id
FROM runs r
WHERE r.id IN (SELECT id FROM members) AND (SELECT count(*) FROM queued) >= 0
ORDER BY r.id
FOR UPDATE OF r
