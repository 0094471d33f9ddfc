-- Insert the runs of batch $1 (tenant $2) from parallel arrays. A row without a condition ($14
-- NULL) is a member: 'enqueued', batch_id set. A row with one is a continuation of the batch:
-- 'awaiting', after_batch set; the runs_updated trigger starts or cancels it when
-- the last member ends.
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
FROM unnest($3::uuid[], $4::int8[], $5::int4[], $6::text[], $7::int2[], $8::jsonb[],
            $9::int4[], $10::int8[], $11::int8[], $12::int4[], $13::int8[], $14::text[])
    AS i(id, job_id, version, queue, priority, input, max_attempts, timeout_ms, fuel,
         memory_mb, backoff_base_ms, after_on)
CROSS JOIN LATERAL (
    SELECT CASE WHEN i.after_on IS NULL THEN format('enqueued via API in batch %s', $1::uuid)
                ELSE format('awaiting batch %s (on %s)', $1::uuid, i.after_on) END AS reason
) r
