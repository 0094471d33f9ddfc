-- Delete up to $3 rollup rows past their retention: 10-second rows older than $1 ms, hourly and
-- daily rows older than $2 ms (a range of the primary key per width).
WITH victims AS (
    SELECT s.ctid
    FROM run_stats s
    WHERE (s.width_s = 10 AND s.bucket < now() - make_interval(secs => $1::float8 / 1000))
       OR (s.width_s IN (3600, 86400)
           AND s.bucket < now() - make_interval(secs => $2::float8 / 1000))
    LIMIT $3
)
DELETE FROM run_stats s
USING victims v
WHERE s.ctid = v.ctid
