-- Delete up to $1 batches that no run refers to any more (members and continuations all
-- deleted). No run can refer to a batch later: runs join a batch only when it is created.
WITH victims AS (
    SELECT b.id
    FROM batches b
    WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.batch_id = b.id)
      AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.after_batch = b.id)
    ORDER BY b.id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
DELETE FROM batches b
USING victims v
WHERE b.id = v.id
