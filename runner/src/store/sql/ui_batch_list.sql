-- A page of batches, newest first (ids are UUIDv7): tenant $1 (every tenant when NULL), older
-- than $2, at most $3. Progress comes from the batch's own counters, never from its runs.
SELECT b.id, t.name AS tenant, b.total, b.pending, b.unsuccessful, b.created_at,
       b.finished_at, b.cancelled_at
FROM batches b
JOIN tenants t ON t.id = b.tenant_id
WHERE ($1::int8 IS NULL OR b.tenant_id = $1)
  AND ($2::uuid IS NULL OR b.id < $2)
ORDER BY b.id DESC
LIMIT $3
