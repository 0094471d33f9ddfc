-- The rollup of ended attempts that the dashboard's charts and usage pages read (never a scan
-- of `runs` or `attempts`). Each runner adds up the attempts it completes in memory and
-- upserts its own rows every few seconds (`runner_id` is part of the key, so runners never
-- contend for a row); the rescuer adds `runner_lost` attempts in its own statement.
--
-- Every attempt is counted three times, once per bucket width: 10 seconds (the realtime chart,
-- kept `--retention-stats-fine`, 2 hours by default), one hour (the 24-hour and 7-day history)
-- and one UTC day (30-day history and usage; both kept `--retention-stats`, 400 days).
CREATE TABLE run_stats (
    width_s         integer NOT NULL CHECK (width_s IN (10, 3600, 86400)),
    bucket          timestamptz NOT NULL,
    tenant_id       bigint NOT NULL,
    job_id          bigint NOT NULL,
    runner_id       uuid NOT NULL,
    outcome         attempt_outcome NOT NULL,
    -- Attempts that ended with `outcome`, and how many of them ended their run (succeeded,
    -- failed or cancelled: the rest were retried or snoozed).
    attempts        bigint NOT NULL CHECK (attempts >= 0),
    runs_ended      bigint NOT NULL CHECK (runs_ended >= 0),
    fuel_used       bigint NOT NULL CHECK (fuel_used >= 0),
    duration_ms     bigint NOT NULL CHECK (duration_ms >= 0),
    peak_memory_max bigint NOT NULL CHECK (peak_memory_max >= 0),
    PRIMARY KEY (width_s, bucket, tenant_id, job_id, runner_id, outcome)
);
-- One tenant's charts and usage: a range of buckets of one width.
CREATE INDEX run_stats_tenant ON run_stats (tenant_id, width_s, bucket);
