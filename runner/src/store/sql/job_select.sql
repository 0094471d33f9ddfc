SELECT j.id, j.name, j.current_version AS version, j.xmin::text::int8 AS row_version, v.digest, c.size, j.max_attempts, j.timeout_ms,
       j.fuel, j.memory_mb, j.backoff_base_ms, j.queue, j.priority, j.created_at, j.updated_at
FROM jobs j
JOIN job_versions v ON v.job_id = j.id AND v.version = j.current_version
JOIN components c ON c.tenant_id = j.tenant_id AND c.digest = v.digest
WHERE j.tenant_id = $1 AND ($2::text IS NULL OR j.name = $2)
ORDER BY j.name
