-- A page of a run's log lines ($1; attempt $2; after line $3), at most $4 lines, stopping once
-- the lines' text passes $5 bytes (the line that passes it is the last; the first always comes),
-- so a page of large lines never ships much more than $5 bytes. `upto_bytes` tells the caller
-- whether the budget cut the page.
SELECT id, attempt, at, level, message, fields, upto_bytes
FROM (
    SELECT id, attempt, at, level, message, fields,
           (sum(octet_length(message) + octet_length(fields::text)) OVER (ORDER BY id))::int8
               AS upto_bytes,
           octet_length(message) + octet_length(fields::text) AS own_bytes
    FROM logs
    WHERE run_id = $1 AND ($2::int4 IS NULL OR attempt = $2)
      AND ($3::int8 IS NULL OR id > $3)
    ORDER BY id
    LIMIT $4
) page
WHERE upto_bytes - own_bytes < $5
ORDER BY id
