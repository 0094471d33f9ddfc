-- The dashboard's state tabs, without an index on `runs.state`.
--
-- The Failed tab and the overview's latest failures: every failed run's last
-- attempt did not end `ok`, so walking these attempts newest run first finds the failed runs
-- without reading the succeeded ones (`runs` has no index on `state`: one there would make
-- every state change rewrite index entries). An attempt row is written once and never
-- updated, and only attempts that did not succeed enter this index, so the hot path pays
-- nothing for it on success.
CREATE INDEX attempts_not_ok ON attempts (run_id DESC) WHERE outcome <> 'ok';

-- The Cancelled and Awaiting tabs: every transition into `cancelled` or `awaiting` is stored in
-- `run_events` (only routine transitions are derived), so walking those events newest run first
-- finds such runs without reading the others. Events are written once; only these two kinds
-- enter the index.
CREATE INDEX run_events_rare_states ON run_events (to_state, run_id DESC)
    WHERE to_state IN ('cancelled', 'awaiting');
