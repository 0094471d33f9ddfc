-- Deletes up to $2 job versions that are not their job's current version, were uploaded more
-- than $1 ms ago and that no run references; then the component bytes no version of their
-- tenant uses any more. Returns how many versions were deleted.
WITH doomed AS (
    SELECT v.job_id, v.version
    FROM job_versions v
    JOIN jobs j ON j.id = v.job_id
    WHERE v.version <> j.current_version
      AND v.created_at < now() - make_interval(secs => $1::float8 / 1000)
      AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.job_id = v.job_id AND r.version = v.version)
    ORDER BY v.created_at
    LIMIT $2
    FOR UPDATE OF v SKIP LOCKED
), deleted AS (
    DELETE FROM job_versions v
    USING doomed d
    WHERE v.job_id = d.job_id AND v.version = d.version
    RETURNING v.job_id, v.version, v.tenant_id, v.digest
), unused AS (
    -- (This statement still sees the versions it deletes: leave those out by hand.)
    DELETE FROM components c
    USING (SELECT DISTINCT tenant_id, digest FROM deleted) d
    WHERE c.tenant_id = d.tenant_id AND c.digest = d.digest
      AND NOT EXISTS (SELECT 1 FROM job_versions v
                      WHERE v.tenant_id = d.tenant_id AND v.digest = d.digest
                        AND (v.job_id, v.version) NOT IN (SELECT job_id, version FROM deleted))
    RETURNING 1
)
SELECT count(*) FROM deleted
