-- Up to $1 runs whose lease expired, oldest expiry first, with what the backoff needs.
SELECT q.run_id, q.lease_token, r.attempt, r.backoff_base_ms
FROM run_queue q
JOIN runs r ON r.id = q.run_id
WHERE q.state = 'running' AND q.lease_expires_at < now()
ORDER BY q.lease_expires_at
LIMIT $1
