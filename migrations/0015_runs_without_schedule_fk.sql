-- runs.schedule_id was the one foreign key left on `runs` (0003). Every inserted run queued a
-- check of it, even with no schedule (measured: bulk enqueue 7% and batch creation 3% faster
-- without it). Deleting a schedule now clears its runs' schedule_id itself
-- (store/schedules.rs, schedule_delete), as the key's ON DELETE SET NULL did; nothing else
-- relied on it: the scheduler inserts a schedule's run while it holds the schedule row locked.
ALTER TABLE runs DROP CONSTRAINT IF EXISTS runs_schedule_id_fkey;
