-- Newest first; run ids are UUIDv7, so id order is creation order. Inputs and outputs larger
-- than $6 bytes (as JSON text) are left out, so a list never ships them: the stored size is
-- checked first (cheap, no decompression), the text length only for small stored values.
SELECT r.id, j.name AS job, r.version, r.state, r.queue, r.priority,
       v.input, v.output, r.error,
       (v.input IS NULL AND r.input IS NOT NULL) AS input_truncated,
       (v.output IS NULL AND r.output IS NOT NULL) AS output_truncated,
       r.attempt, r.max_attempts, r.timeout_ms, r.fuel, r.memory_mb, r.backoff_base_ms,
       r.scheduled_at, r.created_at, r.started_at, r.finished_at, r.progress, r.progress_message,
       r.batch_id, r.after_run, r.after_batch, r.after_on, r.snoozes, r.cancel_requested_at,
       s.name AS schedule, r.fire_at
FROM runs r
JOIN jobs j ON j.id = r.job_id
LEFT JOIN schedules s ON s.id = r.schedule_id
CROSS JOIN LATERAL (
    SELECT CASE WHEN pg_column_size(r.input) > $6 THEN NULL
                WHEN octet_length(r.input::text) > $6 THEN NULL
                ELSE r.input END AS input,
           CASE WHEN r.output IS NULL THEN NULL
                WHEN pg_column_size(r.output) > $6 THEN NULL
                WHEN octet_length(r.output::text) > $6 THEN NULL
                ELSE r.output END AS output
) v
WHERE r.tenant_id = $1
  AND ($2::run_state IS NULL OR r.state = $2)
  AND ($3::text IS NULL OR j.name = $3)
  AND ($4::uuid IS NULL OR r.id < $4)
ORDER BY r.id DESC
LIMIT $5
