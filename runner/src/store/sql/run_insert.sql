-- Insert runs from parallel arrays and return them as inserted (a worker may claim them before
-- the caller reads them again).
WITH inserted AS (
    INSERT INTO runs (id, tenant_id, job_id, version, state, queue, priority, input, max_attempts,
                      timeout_ms, fuel, memory_mb, backoff_base_ms, state_reason)
    SELECT *
    FROM unnest($1::uuid[], $2::int8[], $3::int8[], $4::int4[], $5::text[]::run_state[],
                $6::text[], $7::int2[], $8::jsonb[], $9::int4[], $10::int8[], $11::int8[],
                $12::int4[], $13::int8[], $14::text[])
    RETURNING *
)
SELECT r.id, j.name AS job, r.version, r.state, r.queue, r.priority, r.input, r.output, r.error,
       r.attempt, r.max_attempts, r.timeout_ms, r.fuel, r.memory_mb, r.backoff_base_ms,
       r.scheduled_at, r.created_at, r.started_at, r.finished_at, r.progress, r.progress_message
FROM inserted r
JOIN jobs j ON j.id = r.job_id
