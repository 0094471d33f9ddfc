-- A page of jobs of tenant $1 (every tenant when NULL) with their current version, ordered by
-- tenant and name, after the keyset ($2 tenant, $3 job); the (tenant_id, name) key serves it.
SELECT j.id, t.name AS tenant, j.name, j.current_version AS version, v.digest, c.size,
       v.created_at AS uploaded_at,
       (SELECT count(*) FROM job_versions x WHERE x.job_id = j.id) AS versions
FROM jobs j
JOIN tenants t ON t.id = j.tenant_id
JOIN job_versions v ON v.job_id = j.id AND v.version = j.current_version
JOIN components c ON c.tenant_id = v.tenant_id AND c.digest = v.digest
WHERE ($1::int8 IS NULL OR j.tenant_id = $1)
  AND ($2::text IS NULL OR (t.name, j.name) > ($2::text, $3::text))
ORDER BY t.name, j.name
LIMIT $4
