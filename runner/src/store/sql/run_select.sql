SELECT r.id, j.name AS job, r.version, r.state, r.queue, r.priority, r.input, r.output, r.error,
       r.attempt, r.max_attempts, r.timeout_ms, r.fuel, r.memory_mb, r.backoff_base_ms,
       r.scheduled_at, r.created_at, r.started_at, r.finished_at, r.progress, r.progress_message,
       r.batch_id, r.after_run, r.after_batch, r.after_on, r.snoozes, r.cancel_requested_at,
       s.name AS schedule, r.fire_at, r.origin
FROM runs r
JOIN jobs j ON j.id = r.job_id
LEFT JOIN schedules s ON s.id = r.schedule_id
WHERE r.tenant_id = $1 AND r.id = $2
