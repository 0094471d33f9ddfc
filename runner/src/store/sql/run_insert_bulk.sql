-- Insert plain runs (no continuations) from parallel arrays, without reading them back: the
-- bulk enqueue path. A run due later is 'scheduled' (by the database clock). The runs_inserted
-- trigger adds their run_queue rows and wakes the runners, once for the whole statement.
-- The arrays are unnested as set-returning functions of the select list, which advance in step
-- (one row per index). `unnest(a, b, ...)` in FROM would first copy each array into a
-- tuplestore of its own: about 50 µs more per statement and twice the cost per row.
INSERT INTO runs (id, tenant_id, job_id, version, state, queue, priority, input, max_attempts,
                  timeout_ms, fuel, memory_mb, backoff_base_ms, state_reason, origin,
                  scheduled_at)
SELECT i.id, i.tenant_id, i.job_id, i.version,
       CASE WHEN d.due > now() THEN 'scheduled'::run_state ELSE 'enqueued'::run_state END,
       i.queue, i.priority, i.input, i.max_attempts, i.timeout_ms, i.fuel, i.memory_mb,
       i.backoff_base_ms, i.reason, i.reason, greatest(d.due, now())
FROM (SELECT unnest($1::uuid[]) AS id, unnest($2::int8[]) AS tenant_id,
             unnest($3::int8[]) AS job_id, unnest($4::int4[]) AS version,
             unnest($5::text[]) AS queue, unnest($6::int2[]) AS priority,
             unnest($7::jsonb[]) AS input, unnest($8::int4[]) AS max_attempts,
             unnest($9::int8[]) AS timeout_ms, unnest($10::int8[]) AS fuel,
             unnest($11::int4[]) AS memory_mb, unnest($12::int8[]) AS backoff_base_ms,
             unnest($13::text[]) AS reason, unnest($14::int8[]) AS delay_ms,
             unnest($15::timestamptz[]) AS run_at) i
CROSS JOIN LATERAL (
    SELECT coalesce(i.run_at, now() + make_interval(secs => coalesce(i.delay_ms, 0)::float8 / 1000))
        AS due
) d
