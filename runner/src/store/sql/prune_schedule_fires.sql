-- Delete up to $2 records of fired schedule times recorded more than $1 ms ago. Only history
-- is deleted: a fire time before its schedule's next_fire_at (which only moves forward) can
-- never be fired again, so the record is no longer needed to keep it unique; the latest
-- record of each schedule and every record of a paused schedule (next_fire_at NULL) are kept.
WITH victims AS (
    SELECT f.schedule_id, f.fire_at
    FROM schedule_fires f
    JOIN schedules s ON s.id = f.schedule_id
    WHERE f.recorded_at < now() - make_interval(secs => $1::float8 / 1000)
      AND f.fire_at < s.next_fire_at
      AND EXISTS (SELECT 1 FROM schedule_fires later
                  WHERE later.schedule_id = f.schedule_id AND later.fire_at > f.fire_at)
    ORDER BY f.recorded_at
    LIMIT $2
    FOR UPDATE OF f SKIP LOCKED
)
DELETE FROM schedule_fires f
USING victims v
WHERE f.schedule_id = v.schedule_id AND f.fire_at = v.fire_at
