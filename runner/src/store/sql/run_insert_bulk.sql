-- Insert plain runs (no continuations) from parallel arrays, without reading them back: the
-- bulk enqueue path. A run due later is 'scheduled' (by the database clock). The runs_inserted
-- trigger adds their run_queue rows and wakes the runners, once for the whole statement.
INSERT INTO runs (id, tenant_id, job_id, version, state, queue, priority, input, max_attempts,
                  timeout_ms, fuel, memory_mb, backoff_base_ms, state_reason, origin,
                  scheduled_at)
SELECT i.id, i.tenant_id, i.job_id, i.version,
       CASE WHEN d.due > now() THEN 'scheduled'::run_state ELSE 'enqueued'::run_state END,
       i.queue, i.priority, i.input, i.max_attempts, i.timeout_ms, i.fuel, i.memory_mb,
       i.backoff_base_ms, i.reason, i.reason, greatest(d.due, now())
FROM unnest($1::uuid[], $2::int8[], $3::int8[], $4::int4[], $5::text[], $6::int2[],
            $7::jsonb[], $8::int4[], $9::int8[], $10::int8[], $11::int4[], $12::int8[],
            $13::text[], $14::int8[], $15::timestamptz[])
    AS i(id, tenant_id, job_id, version, queue, priority, input, max_attempts, timeout_ms,
         fuel, memory_mb, backoff_base_ms, reason, delay_ms, run_at)
CROSS JOIN LATERAL (
    SELECT coalesce(i.run_at, now() + make_interval(secs => coalesce(i.delay_ms, 0)::float8 / 1000))
        AS due
) d
