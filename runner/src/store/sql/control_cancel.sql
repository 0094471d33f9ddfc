-- Cancel run $2 of tenant $1 that is not running and has not ended ($3 says who asked, e.g.
-- 'via API'). The runs_updated trigger then
-- starts or cancels its continuations (and finishes its batch if it was the last member).
UPDATE runs
SET state = 'cancelled',
    finished_at = now(),
    error = 'cancelled ' || $3,
    state_reason = 'cancelled ' || $3
WHERE tenant_id = $1 AND id = $2 AND state IN ('scheduled', 'awaiting', 'enqueued', 'retrying')
