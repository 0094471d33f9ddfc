-- Delete up to $3 expired terminal runs, oldest first, with their attempts, history and logs:
-- succeeded and cancelled runs finished more than $1 ms ago, failed runs finished more than
-- $2 ms ago. Run ids are UUIDv7 (creation time first), so candidates are read in primary-key
-- order from $4 (the pruner's cursor, or the smallest id) up to the id of the shorter
-- retention's cut-off: no index on the hot columns is needed. Kept: members of a batch still
-- in progress (its continuations wait for them) and any run a continuation still waits for.
-- SKIP LOCKED: a run being retried or deleted right now is left alone.
WITH victims AS (
    SELECT r.id
    FROM runs r
    WHERE r.id >= $4::uuid
      AND r.id < sandfire_uuid_v7_floor(now() - make_interval(secs => least($1, $2)::float8 / 1000))
      AND ((r.state IN ('succeeded', 'cancelled')
            AND r.finished_at < now() - make_interval(secs => $1::float8 / 1000))
           OR (r.state = 'failed'
               AND r.finished_at < now() - make_interval(secs => $2::float8 / 1000)))
      AND (r.batch_id IS NULL
           OR EXISTS (SELECT 1 FROM batches b
                      WHERE b.id = r.batch_id AND b.finished_at IS NOT NULL))
      AND (NOT r.has_dependents
           OR NOT EXISTS (SELECT 1 FROM runs c WHERE c.after_run = r.id AND c.state = 'awaiting'))
    ORDER BY r.id
    LIMIT $3
    FOR UPDATE OF r SKIP LOCKED
), gone AS (
    DELETE FROM runs r
    USING victims v
    WHERE r.id = v.id AND r.state IN ('succeeded', 'failed', 'cancelled')
    RETURNING r.id
), attempts_gone AS (
    DELETE FROM attempts a USING gone g WHERE a.run_id = g.id
), events_gone AS (
    DELETE FROM run_events e USING gone g WHERE e.run_id = g.id
), logs_gone AS (
    DELETE FROM logs l USING gone g WHERE l.run_id = g.id
)
SELECT (SELECT count(*) FROM gone) AS deleted,
       (SELECT id FROM gone ORDER BY id DESC LIMIT 1) AS last
