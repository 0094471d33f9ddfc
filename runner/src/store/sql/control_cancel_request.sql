-- Ask the runner holding running run $2 of tenant $1 to interrupt its attempt. The NOTIFY is
-- delivered at commit; a runner that misses it sees cancel_requested_at at its next heartbeat.
-- A repeated request keeps the first time and notifies again.
UPDATE runs
SET cancel_requested_at = coalesce(cancel_requested_at, now())
WHERE tenant_id = $1 AND id = $2 AND state = 'running'
RETURNING pg_notify('sandfire_cancel', id::text)
