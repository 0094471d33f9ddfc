-- Lock the unfinished members of batch $2 (tenant $1) in a stable order, so a cancel and a
-- concurrent completion of a member queue up instead of deadlocking.
SELECT id
FROM runs
WHERE tenant_id = $1 AND batch_id = $2 AND state NOT IN ('succeeded', 'failed', 'cancelled')
ORDER BY id
FOR UPDATE
