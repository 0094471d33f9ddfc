-- Adds one runner's sums to the rollup (rows of every width, in one order for every writer).
-- Only runner $1 writes rows with its id, so two runners never wait for each other here.
INSERT INTO run_stats AS s (width_s, bucket, tenant_id, job_id, runner_id, outcome, attempts,
                            runs_ended, fuel_used, duration_ms, peak_memory_max)
SELECT i.width_s, i.bucket, i.tenant_id, i.job_id, $1, i.outcome::attempt_outcome, i.attempts,
       i.runs_ended, i.fuel_used, i.duration_ms, i.peak_memory_max
FROM unnest($2::int4[], $3::timestamptz[], $4::int8[], $5::int8[], $6::text[], $7::int8[],
            $8::int8[], $9::int8[], $10::int8[], $11::int8[])
    AS i(width_s, bucket, tenant_id, job_id, outcome, attempts, runs_ended, fuel_used,
         duration_ms, peak_memory_max)
ON CONFLICT (width_s, bucket, tenant_id, job_id, runner_id, outcome) DO UPDATE
SET attempts = s.attempts + EXCLUDED.attempts,
    runs_ended = s.runs_ended + EXCLUDED.runs_ended,
    fuel_used = s.fuel_used + EXCLUDED.fuel_used,
    duration_ms = s.duration_ms + EXCLUDED.duration_ms,
    peak_memory_max = greatest(s.peak_memory_max, EXCLUDED.peak_memory_max)
