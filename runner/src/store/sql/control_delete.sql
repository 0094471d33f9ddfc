-- Delete terminal run $2 of tenant $1; attempts, history and logs go with it (ON DELETE
-- CASCADE). Never a run that a continuation still waits for (none can: a run's awaiting
-- continuations are decided when it ends, but the guard costs nothing).
DELETE FROM runs r
WHERE r.tenant_id = $1 AND r.id = $2 AND r.state IN ('succeeded', 'failed', 'cancelled')
  AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.after_run = r.id AND c.state = 'awaiting')
