-- A page of runs for the dashboard's list: tenant $1 (every tenant when NULL), filters by state
-- $2, job $3, queue $4, the latest attempt's outcome $5 and version $6; keyset paging by id
-- (older than $7 or newer than $8); created at or after the UUIDv7 floor $10 and before the
-- floor $11 (a run's id starts with its creation time, so a time range is an id range of the
-- same index the paging uses).
--
-- The caller puts in the rows the page walks (`/*walk*/`: the runs themselves, or for a state
-- few runs are in, a smaller set that holds them, each joined to its run `r`) and appends the
-- ORDER BY and LIMIT: newest first for "older" pages, oldest first (then reversed) for "newer"
-- pages. `runs` has no index on `state` (an index there would make every state change of the
-- hot path rewrite index entries), so:
--   - waiting and running states walk the hot table `run_queue`, which holds only those;
--   - `failed` walks `attempts_not_ok` (every failed run's last attempt did not end `ok`);
--   - `cancelled` and `awaiting` walk their transitions in `run_events_rare_states`;
--   - every other filter walks the tenant's runs newest first (`runs_tenant`).
SELECT r.id, t.name AS tenant, j.name AS job, r.version, r.state, r.queue, r.priority,
       left(r.error, 200) AS error, r.attempt, r.max_attempts, r.created_at, r.started_at,
       r.finished_at, r.progress, a.outcome AS last_outcome, a.duration_ms AS last_duration_ms
FROM /*walk*/
JOIN jobs j ON j.id = r.job_id
JOIN tenants t ON t.id = r.tenant_id
LEFT JOIN attempts a ON a.run_id = r.id AND a.number = r.attempt
WHERE ($1::int8 IS NULL OR r.tenant_id = $1)
  AND ($2::run_state IS NULL OR r.state = $2)
  AND ($3::text IS NULL OR j.name = $3)
  AND ($4::text IS NULL OR r.queue = $4)
  AND ($5::attempt_outcome IS NULL OR a.outcome = $5)
  AND ($6::int4 IS NULL OR r.version = $6)
  AND ($7::uuid IS NULL OR r.id < $7)
  AND ($8::uuid IS NULL OR r.id > $8)
  AND ($10::uuid IS NULL OR r.id >= $10)
  AND ($11::uuid IS NULL OR r.id < $11)
