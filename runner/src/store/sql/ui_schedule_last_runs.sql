-- The latest run of each of the schedules $2 (of tenant $1; every tenant when NULL), through
-- the runs_schedule (schedule_id, id DESC) index: one row per schedule.
SELECT x.schedule_id, r.id, r.state, r.created_at
FROM unnest($2::int8[]) AS x(schedule_id)
CROSS JOIN LATERAL (
    SELECT id, state, created_at
    FROM runs
    WHERE schedule_id = x.schedule_id AND ($1::int8 IS NULL OR tenant_id = $1)
    ORDER BY id DESC
    LIMIT 1
) r
