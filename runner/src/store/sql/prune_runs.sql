-- Delete up to $3 expired terminal runs, oldest first: succeeded and cancelled runs finished
-- more than $1 ms ago, failed runs finished more than $2 ms ago. Attempts, history and logs go
-- with them (ON DELETE CASCADE). Kept: members of a batch still in progress (its completion
-- rule counts them) and any run a continuation still waits for. SKIP LOCKED: a run being
-- retried or deleted right now is left alone; the lock re-checks the conditions.
WITH victims AS (
    SELECT r.id
    FROM runs r
    WHERE r.finished_at < now() - make_interval(secs => least($1, $2)::float8 / 1000)
      AND ((r.state IN ('succeeded', 'cancelled')
            AND r.finished_at < now() - make_interval(secs => $1::float8 / 1000))
           OR (r.state = 'failed'
               AND r.finished_at < now() - make_interval(secs => $2::float8 / 1000)))
      AND (r.batch_id IS NULL
           OR EXISTS (SELECT 1 FROM batches b
                      WHERE b.id = r.batch_id AND b.finished_at IS NOT NULL))
      AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.after_run = r.id AND c.state = 'awaiting')
    ORDER BY r.finished_at
    LIMIT $3
    FOR UPDATE OF r SKIP LOCKED
)
DELETE FROM runs r
USING victims v
WHERE r.id = v.id AND r.state IN ('succeeded', 'failed', 'cancelled')
