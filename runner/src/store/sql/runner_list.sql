-- Live runners with the attempts they hold (of one tenant when $1 is set).
SELECT w.id, w.host, w.version, w.queues, w.slots, w.started_at, w.heartbeat_at,
       EXISTS (SELECT 1 FROM leaders l
               WHERE l.runner_id = w.id AND l.expires_at > now()) AS leader,
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                            'run_id', r.id, 'job', j.name, 'attempt', r.attempt,
                            'started_at', r.started_at, 'lease_expires_at', q.lease_expires_at)
                        ORDER BY r.started_at)
                 FROM run_queue q
                 JOIN runs r ON r.id = q.run_id
                 JOIN jobs j ON j.id = r.job_id
                 WHERE q.runner_id = w.id AND q.state = 'running'
                   AND ($1::int8 IS NULL OR q.tenant_id = $1)), '[]'::jsonb) AS in_flight
FROM runners w
ORDER BY w.started_at
