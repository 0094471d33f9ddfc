-- The continuations of batch $2 (tenant $1), oldest first.
SELECT r.id, j.name AS job, r.state, r.after_on
FROM runs r
JOIN jobs j ON j.id = r.job_id
WHERE r.tenant_id = $1 AND r.after_batch = $2
ORDER BY r.id
