-- Delete terminal run $2 of tenant $1 with its attempts, history and logs. Never a run that a
-- continuation still waits for (none can: a run's awaiting continuations are decided when it
-- ends, but the guard costs nothing).
WITH gone AS (
    DELETE FROM runs r
    WHERE r.tenant_id = $1 AND r.id = $2 AND r.state IN ('succeeded', 'failed', 'cancelled')
      AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.after_run = r.id AND c.state = 'awaiting')
    RETURNING r.id
), attempts_gone AS (
    DELETE FROM attempts a USING gone g WHERE a.run_id = g.id
), events_gone AS (
    DELETE FROM run_events e USING gone g WHERE e.run_id = g.id
), logs_gone AS (
    DELETE FROM logs l USING gone g WHERE l.run_id = g.id
)
SELECT count(*) FROM gone
