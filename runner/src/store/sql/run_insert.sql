INSERT INTO runs (id, tenant_id, job_id, version, state, queue, priority, input, max_attempts,
                  timeout_ms, fuel, memory_mb, backoff_base_ms, state_reason)
SELECT *
FROM unnest($1::uuid[], $2::int8[], $3::int8[], $4::int4[], $5::text[]::run_state[], $6::text[],
            $7::int2[], $8::jsonb[], $9::int4[], $10::int8[], $11::int8[], $12::int4[],
            $13::int8[], $14::text[])
