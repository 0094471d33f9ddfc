-- Attempts that ended in the last 24 hours, by outcome, among the attempts of the newest $2
-- runs of tenant $1 (every tenant when NULL): bounded, through the attempts' primary key.
SELECT a.outcome, count(*) AS n
FROM (
    SELECT r.id FROM runs r
    WHERE ($1::int8 IS NULL OR r.tenant_id = $1)
    ORDER BY r.id DESC
    LIMIT $2
) w
JOIN attempts a ON a.run_id = w.id
WHERE a.finished_at > now() - interval '24 hours'
GROUP BY a.outcome
