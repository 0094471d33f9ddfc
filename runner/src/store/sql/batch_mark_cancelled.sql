-- Mark batch $2 (tenant $1) cancelled unless every member already ended without a cancel. A
-- second cancel keeps the first time. The runs_updated trigger reads cancelled_at when the last
-- member ends and then cancels every continuation of the batch.
UPDATE batches
SET cancelled_at = coalesce(cancelled_at, now())
WHERE tenant_id = $1 AND id = $2 AND (finished_at IS NULL OR cancelled_at IS NOT NULL)
RETURNING id
