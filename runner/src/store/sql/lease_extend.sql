-- Extend the leases this runner holds ($1 run ids with $2 their lease tokens) by $3 ms; rows a
-- completion or rescue holds right now are skipped (locked in a stable order, so this never
-- deadlocks with them). Returns each extended token and whether its run was asked to cancel.
WITH held AS (
    SELECT q.run_id
    FROM run_queue q
    JOIN unnest($1::uuid[], $2::uuid[]) AS i(run_id, lease_token)
      ON q.run_id = i.run_id AND q.lease_token = i.lease_token
    ORDER BY q.run_id
    FOR UPDATE OF q SKIP LOCKED
), extended AS (
    UPDATE run_queue q
    SET lease_expires_at = now() + make_interval(secs => $3::float8 / 1000)
    FROM held h
    WHERE q.run_id = h.run_id
    RETURNING q.run_id, q.lease_token
)
SELECT e.lease_token, r.cancel_requested_at IS NOT NULL AS cancel
FROM extended e
JOIN runs r ON r.id = e.run_id
