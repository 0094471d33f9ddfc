-- The latest $3 fire times of tenant $1's schedule $2 that created no run, and why.
SELECT f.fire_at, f.skipped, f.recorded_at
FROM schedule_fires f
JOIN schedules s ON s.id = f.schedule_id
WHERE s.tenant_id = $1 AND f.schedule_id = $2 AND f.run_id IS NULL
ORDER BY f.fire_at DESC
LIMIT $3
