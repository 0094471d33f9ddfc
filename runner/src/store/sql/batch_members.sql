-- The members of batch $2 (tenant $1) that still exist, oldest first.
SELECT r.id, j.name AS job, r.state, NULL::text AS after_on
FROM runs r
JOIN jobs j ON j.id = r.job_id
WHERE r.tenant_id = $1 AND r.batch_id = $2
ORDER BY r.id
