-- Cancel the members of batch $2 (tenant $1), already locked by this transaction: those not
-- running end 'cancelled' now; running ones are asked to stop (the runner holding the attempt
-- interrupts it and completes the run as 'cancelled'). Returns how many of each.
WITH cancelled AS (
    UPDATE runs
    SET state = 'cancelled',
        finished_at = now(),
        error = $3,
        state_reason = $3
    WHERE tenant_id = $1 AND batch_id = $2
      AND state IN ('scheduled', 'awaiting', 'enqueued', 'retrying')
    RETURNING id
), requested AS (
    UPDATE runs
    SET cancel_requested_at = coalesce(cancel_requested_at, now())
    WHERE tenant_id = $1 AND batch_id = $2 AND state = 'running'
    RETURNING id, pg_notify('sandfire_cancel', id::text)
)
SELECT (SELECT count(*) FROM cancelled), (SELECT count(*) FROM requested)
