INSERT INTO queues (tenant_id, name, paused, concurrency_limit)
VALUES ($1, $2, coalesce($3, false), CASE WHEN $4 THEN $5 END)
ON CONFLICT (tenant_id, name) DO UPDATE
SET paused = coalesce($3, queues.paused),
    concurrency_limit = CASE WHEN $4 THEN $5 ELSE queues.concurrency_limit END,
    updated_at = now()
