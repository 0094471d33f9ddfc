-- Recurring runs: a tenant's named schedules (cron expression + IANA time zone + policies) and
-- the record of every fire time that was fired. A fire time is fired at most once: the primary
-- key of `schedule_fires` is (schedule, fire time), and a run is created only in the statement
-- that inserted that row, so neither a restart nor a second runner can fire it twice.

CREATE TABLE schedules (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    job_id           bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- As given (whitespace normalised); validated by the runner before it is stored.
    cron             text NOT NULL CHECK (length(cron) BETWEEN 1 AND 256),
    timezone         text NOT NULL CHECK (length(timezone) BETWEEN 1 AND 64),
    input            jsonb NOT NULL DEFAULT 'null'::jsonb,
    misfire          text NOT NULL DEFAULT 'fire_once'
                     CHECK (misfire IN ('skip', 'fire_once', 'fire_all')),
    -- fire_all: most runs created for the missed fire times of one catch-up.
    misfire_max      integer CHECK (misfire_max > 0),
    -- A fire time at most this late is on time (fired under every policy).
    misfire_grace_ms bigint NOT NULL DEFAULT 1000 CHECK (misfire_grace_ms >= 0),
    overlap          text NOT NULL DEFAULT 'allow' CHECK (overlap IN ('allow', 'skip')),
    paused           boolean NOT NULL DEFAULT false,
    -- Run options; NULL falls back to the job's default, then the runner's, at each fire.
    max_attempts     integer CHECK (max_attempts > 0),
    timeout_ms       bigint CHECK (timeout_ms > 0),
    fuel             bigint CHECK (fuel > 0),
    memory_mb        integer CHECK (memory_mb > 0),
    backoff_base_ms  bigint CHECK (backoff_base_ms >= 0),
    queue            text CHECK (queue ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    priority         smallint,
    -- The first fire time not yet fired. NULL while paused, or when the expression has no
    -- further fire time. Only ever moves forward while the timetable is unchanged.
    next_fire_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    CONSTRAINT max_only_with_fire_all CHECK ((misfire = 'fire_all') = (misfire_max IS NOT NULL)),
    CONSTRAINT paused_never_due CHECK (NOT paused OR next_fire_at IS NULL)
);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE next_fire_at IS NOT NULL;
CREATE INDEX schedules_job ON schedules (job_id);

-- Every fire time that was handled: with the run it created, or with why none was (e.g. the
-- previous run was still active under overlap 'skip'). `run_id` is deliberately not a foreign
-- key: retention deletes runs on its own clock, and must neither be blocked by nor rewrite this
-- record. Rows older than a schedule's `next_fire_at` are history only and may be pruned.
CREATE TABLE schedule_fires (
    schedule_id bigint NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    fire_at     timestamptz NOT NULL,
    run_id      uuid,
    skipped     text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, fire_at),
    CONSTRAINT run_or_reason CHECK ((run_id IS NULL) <> (skipped IS NULL))
);
CREATE INDEX schedule_fires_skipped ON schedule_fires (schedule_id, fire_at DESC)
    WHERE run_id IS NULL;
CREATE INDEX schedule_fires_recorded ON schedule_fires (recorded_at);

-- Which schedule made a run, and for which fire time (NULL for a manual trigger).
ALTER TABLE runs
    ADD COLUMN schedule_id bigint REFERENCES schedules (id) ON DELETE SET NULL,
    ADD COLUMN fire_at     timestamptz;
CREATE INDEX runs_schedule ON runs (schedule_id, id DESC) WHERE schedule_id IS NOT NULL;
-- The overlap check: is a run of this schedule still active?
CREATE INDEX runs_schedule_active ON runs (schedule_id)
    WHERE schedule_id IS NOT NULL
      AND state IN ('scheduled', 'awaiting', 'enqueued', 'running', 'retrying');
