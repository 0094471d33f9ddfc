-- Insert the runs of batch $1 (tenant $2) from parallel arrays. A row without a condition ($14
-- NULL) is a member: 'enqueued', batch_id set. A row with one is a continuation of the batch:
-- 'awaiting', after_batch set; the runs_updated trigger starts or cancels it when
-- the last member ends.
-- The arrays are unnested as set-returning functions of the select list, which advance in step
-- (one row per index). `unnest(a, b, ...)` in FROM would first copy each array into a
-- tuplestore of its own: about 50 µs more per statement and twice the cost per row.
INSERT INTO runs (id, tenant_id, job_id, version, state, queue, priority, input, max_attempts,
                  timeout_ms, fuel, memory_mb, backoff_base_ms, state_reason, origin, batch_id,
                  after_batch, after_on)
SELECT i.id, $2, i.job_id, i.version,
       CASE WHEN i.after_on IS NULL THEN 'enqueued'::run_state ELSE 'awaiting'::run_state END,
       i.queue, i.priority, i.input, i.max_attempts, i.timeout_ms, i.fuel, i.memory_mb,
       i.backoff_base_ms,
       r.reason, r.reason,
       CASE WHEN i.after_on IS NULL THEN $1::uuid END,
       CASE WHEN i.after_on IS NOT NULL THEN $1::uuid END,
       i.after_on
FROM (SELECT unnest($3::uuid[]) AS id, unnest($4::int8[]) AS job_id,
             unnest($5::int4[]) AS version, unnest($6::text[]) AS queue,
             unnest($7::int2[]) AS priority, unnest($8::jsonb[]) AS input,
             unnest($9::int4[]) AS max_attempts, unnest($10::int8[]) AS timeout_ms,
             unnest($11::int8[]) AS fuel, unnest($12::int4[]) AS memory_mb,
             unnest($13::int8[]) AS backoff_base_ms, unnest($14::text[]) AS after_on) i
CROSS JOIN LATERAL (
    SELECT CASE WHEN i.after_on IS NULL THEN format('enqueued via API in batch %s', $1::uuid)
                ELSE format('awaiting batch %s (on %s)', $1::uuid, i.after_on) END AS reason
) r
