-- Delete up to $1 expired idempotency keys, oldest first. A key being renewed right now is
-- skipped and re-checked next time.
WITH victims AS (
    SELECT tenant_id, key
    FROM idempotency_keys
    WHERE expires_at < now()
    ORDER BY expires_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
DELETE FROM idempotency_keys k
USING victims v
WHERE k.tenant_id = v.tenant_id AND k.key = v.key AND k.expires_at < now()
