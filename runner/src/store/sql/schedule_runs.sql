-- The latest $3 runs of each of tenant $1's schedules $2 (fired and triggered), newest first.
SELECT x.schedule_id, r.id, r.state, r.fire_at, r.scheduled_at, r.created_at, r.finished_at
FROM unnest($2::int8[]) AS x(schedule_id)
CROSS JOIN LATERAL (
    SELECT id, state, fire_at, scheduled_at, created_at, finished_at
    FROM runs
    WHERE schedule_id = x.schedule_id AND tenant_id = $1
    ORDER BY id DESC
    LIMIT $3
) r
ORDER BY x.schedule_id, r.id DESC
