-- Log lines of run $2 of tenant $1 (the EXISTS keeps another tenant's run unreadable), attempt
-- $3, at level $4 or above, before line $5 or after line $6. The ORDER BY and LIMIT are
-- appended by the caller: newest first for the tail and "load earlier", oldest first for the
-- live tail's new lines.
SELECT l.id, l.attempt, l.at, l.level, l.message, l.fields
FROM logs l
WHERE l.run_id = $2
  AND EXISTS (SELECT 1 FROM runs r WHERE r.id = $2 AND r.tenant_id = $1)
  AND ($3::int4 IS NULL OR l.attempt = $3)
  AND ($4::log_level IS NULL OR l.level >= $4)
  AND ($5::int8 IS NULL OR l.id < $5)
  AND ($6::int8 IS NULL OR l.id > $6)
