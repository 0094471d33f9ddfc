-- A claim updates each claimed run's `run_queue` row (state `running`, the lease), and since
-- it changes indexed columns the update writes a new entry into every index whose rows it
-- is in. `run_queue_tenant` (every active run by tenant, for the quota count and the queue
-- lists) was one of three: measured during a 60,000-run drain, a claim's update of
-- `run_queue` was about a third of PostgreSQL's CPU, most of it inserting index entries.
-- The tenant index now holds waiting runs only; running ones are found by tenant through
-- `run_queue_leased` (tenant, queue) as before. The statements that count a tenant's active
-- runs read both (waiting + running): the claim writes one index entry fewer per run
-- (PostgreSQL CPU per run of a drain 51.9 -> 48.9 µs).
--
-- Building it reads the waiting runs once (not the stored ones: `run_queue` holds only the
-- active runs) under a lock that holds back enqueues and claims meanwhile: about a second per
-- million waiting runs.
DROP INDEX run_queue_tenant;
CREATE INDEX run_queue_waiting ON run_queue (tenant_id) WHERE state <> 'running';
