-- Sandfire foundation schema: tenants and keys, components and jobs, runs with their attempts,
-- state history and logs. The run state machine is enforced here, not only in the runner, and
-- nothing assumes a single runner: claims use row locks, completions compare a lease token, and
-- every time is the database clock's.

CREATE TYPE run_state AS ENUM (
    'scheduled', 'awaiting', 'enqueued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled'
);

CREATE TYPE attempt_outcome AS ENUM (
    'ok', 'error', 'out_of_fuel', 'memory_limit', 'timeout', 'panic', 'cancelled', 'runner_lost'
);

CREATE TYPE log_level AS ENUM ('trace', 'debug', 'info', 'warn', 'error');

CREATE TABLE tenants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

-- API keys are stored only as the SHA-256 of the whole key; `prefix` identifies a key in lists.
CREATE TABLE api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    prefix       text NOT NULL,
    hash         bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- Uploaded component bytes, immutable, per tenant (a digest never reveals another tenant's upload).
CREATE TABLE components (
    tenant_id  bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    digest     text NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
    bytes      bytea NOT NULL,
    size       integer NOT NULL CHECK (size = length(bytes)),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, digest)
);

-- A tenant's named entry point. The defaults are NULL when the runner's default applies.
CREATE TABLE jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    current_version integer NOT NULL CHECK (current_version > 0),
    max_attempts    integer CHECK (max_attempts > 0),
    timeout_ms      bigint CHECK (timeout_ms > 0),
    fuel            bigint CHECK (fuel > 0),
    memory_mb       integer CHECK (memory_mb > 0),
    backoff_base_ms bigint CHECK (backoff_base_ms >= 0),
    queue           text CHECK (queue ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    priority        smallint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE job_versions (
    job_id     bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    version    integer NOT NULL CHECK (version > 0),
    tenant_id  bigint NOT NULL,
    digest     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, version),
    UNIQUE (job_id, digest),
    FOREIGN KEY (tenant_id, digest) REFERENCES components (tenant_id, digest)
);

-- One requested execution of a job. Effective options are copied in at enqueue time, so a run
-- keeps what it was accepted with even if the job's defaults change later.
CREATE TABLE runs (
    id               uuid PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job_id           bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    version          integer NOT NULL,
    state            run_state NOT NULL,
    queue            text NOT NULL,
    priority         smallint NOT NULL,
    input            jsonb NOT NULL,
    output           jsonb,
    error            text,
    attempt          integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     integer NOT NULL CHECK (max_attempts > 0),
    timeout_ms       bigint NOT NULL CHECK (timeout_ms > 0),
    fuel             bigint NOT NULL CHECK (fuel > 0),
    memory_mb        integer NOT NULL CHECK (memory_mb > 0),
    backoff_base_ms  bigint NOT NULL CHECK (backoff_base_ms >= 0),
    -- When the run is (or was) due: the delayed/retry time while scheduled or retrying.
    scheduled_at     timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    -- Who holds the run while it is running, and until when (extended by heartbeats).
    runner_id        uuid,
    lease_token      uuid,
    lease_expires_at timestamptz,
    progress         smallint CHECK (progress BETWEEN 0 AND 100),
    progress_message text,
    -- Why the latest state change happened; copied into run_events by the history trigger.
    state_reason     text,
    FOREIGN KEY (job_id, version) REFERENCES job_versions (job_id, version),
    CONSTRAINT finished_iff_terminal
        CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CONSTRAINT lease_iff_running
        CHECK ((state = 'running') = (lease_token IS NOT NULL AND runner_id IS NOT NULL
                                      AND lease_expires_at IS NOT NULL)),
    CONSTRAINT output_only_when_succeeded CHECK (output IS NULL OR state = 'succeeded'),
    CONSTRAINT running_has_attempt CHECK (state <> 'running' OR attempt > 0)
);
CREATE INDEX runs_claim ON runs (queue, priority DESC, scheduled_at, id) WHERE state = 'enqueued';
CREATE INDEX runs_due ON runs (scheduled_at) WHERE state IN ('scheduled', 'retrying');
CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE state = 'running';
CREATE INDEX runs_tenant ON runs (tenant_id, id DESC);
CREATE INDEX runs_tenant_state ON runs (tenant_id, state, id DESC);
CREATE INDEX runs_job ON runs (job_id, id DESC);

-- One execution of a run in a fresh sandbox.
CREATE TABLE attempts (
    run_id      uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    number      integer NOT NULL CHECK (number > 0),
    runner_id   uuid NOT NULL,
    lease_token uuid NOT NULL UNIQUE,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     attempt_outcome,
    error       text,
    fuel_used   bigint,
    peak_memory bigint,
    duration_ms bigint,
    PRIMARY KEY (run_id, number),
    CONSTRAINT finished_iff_outcome CHECK ((outcome IS NULL) = (finished_at IS NULL))
);

-- Every state change of every run: when, from, to, why.
CREATE TABLE run_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id     uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    from_state run_state,
    to_state   run_state NOT NULL,
    reason     text
);
CREATE INDEX run_events_run ON run_events (run_id, id);

CREATE TABLE logs (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id  uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    at      timestamptz NOT NULL,
    level   log_level NOT NULL,
    message text NOT NULL,
    fields  jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX logs_run ON logs (run_id, id);

-- The state machine. An illegal transition raises check_violation, whoever attempts it.
CREATE FUNCTION sandfire_run_transition_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    allowed boolean;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.state NOT IN ('scheduled', 'awaiting', 'enqueued') THEN
            RAISE EXCEPTION 'a run cannot be created in state %', NEW.state
                USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.state IS DISTINCT FROM OLD.state THEN
        allowed := CASE OLD.state
            WHEN 'scheduled' THEN NEW.state IN ('enqueued', 'cancelled')
            WHEN 'awaiting'  THEN NEW.state IN ('enqueued', 'cancelled')
            WHEN 'enqueued'  THEN NEW.state IN ('running', 'scheduled', 'cancelled')
            WHEN 'running'   THEN NEW.state IN ('succeeded', 'failed', 'retrying', 'scheduled',
                                                'enqueued', 'cancelled')
            WHEN 'retrying'  THEN NEW.state IN ('enqueued', 'cancelled')
            WHEN 'succeeded' THEN false
            WHEN 'failed'    THEN NEW.state IN ('enqueued')
            WHEN 'cancelled' THEN NEW.state IN ('enqueued')
        END;
        IF NOT allowed THEN
            RAISE EXCEPTION 'run % cannot move from % to %', OLD.id, OLD.state, NEW.state
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER runs_transition_check BEFORE INSERT OR UPDATE OF state ON runs
    FOR EACH ROW EXECUTE FUNCTION sandfire_run_transition_check();

-- History and wake-up: record every change, and tell listening runners that work is ready
-- (NOTIFY payloads are de-duplicated per transaction, so a batch wakes each runner once).
CREATE FUNCTION sandfire_run_transition_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_events (run_id, from_state, to_state, reason)
    VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state, NEW.state_reason);
    IF NEW.state = 'enqueued' THEN
        PERFORM pg_notify('sandfire_enqueued', NEW.queue);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_transition_insert AFTER INSERT ON runs
    FOR EACH ROW EXECUTE FUNCTION sandfire_run_transition_record();
CREATE TRIGGER runs_transition_update AFTER UPDATE OF state ON runs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION sandfire_run_transition_record();
