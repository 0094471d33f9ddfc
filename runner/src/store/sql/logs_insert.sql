INSERT INTO logs (run_id, attempt, at, level, message, fields)
SELECT *
FROM unnest($1::uuid[], $2::int4[], $3::timestamptz[], $4::text[]::log_level[], $5::text[],
            $6::jsonb[])
