-- The dashboard's Failed tab and the overview's latest failures: every failed run's last
-- attempt did not end `ok`, so walking these attempts newest run first finds the failed runs
-- without reading the succeeded ones (`runs` has no index on `state`: one there would make
-- every state change rewrite index entries). An attempt row is written once and never
-- updated, and only attempts that did not succeed enter this index, so the hot path pays
-- nothing for it on success.
CREATE INDEX attempts_not_ok ON attempts (run_id DESC) WHERE outcome <> 'ok';
