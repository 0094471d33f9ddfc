-- Every kind of job: delayed runs, continuations (after a run or a batch), batches, per-tenant
-- queue settings (pause, global concurrency limit), idempotency keys, cancellation requests and
-- bounded snoozes. Continuations are resolved by a trigger in the same transaction as the
-- parent's final state change, so no continuation can be lost between two statements.

CREATE TABLE batches (
    id           uuid PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    total        integer NOT NULL CHECK (total > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- When every member run reached a terminal state.
    finished_at  timestamptz,
    cancelled_at timestamptz
);
CREATE INDEX batches_tenant ON batches (tenant_id, id DESC);

ALTER TABLE runs
    ADD COLUMN batch_id            uuid REFERENCES batches (id) ON DELETE CASCADE,
    -- A continuation waits for one parent run or one batch, under a condition.
    ADD COLUMN after_run           uuid,
    ADD COLUMN after_batch         uuid REFERENCES batches (id) ON DELETE CASCADE,
    ADD COLUMN after_on            text CHECK (after_on IN ('succeeded', 'failed', 'finished')),
    ADD COLUMN input_from_parent   boolean NOT NULL DEFAULT false,
    ADD COLUMN snoozes             integer NOT NULL DEFAULT 0 CHECK (snoozes >= 0),
    ADD COLUMN cancel_requested_at timestamptz,
    ADD CONSTRAINT continuation_has_condition
        CHECK ((after_run IS NULL AND after_batch IS NULL) = (after_on IS NULL)),
    ADD CONSTRAINT one_parent CHECK (after_run IS NULL OR after_batch IS NULL),
    ADD CONSTRAINT awaiting_has_parent
        CHECK (state <> 'awaiting' OR after_run IS NOT NULL OR after_batch IS NOT NULL);
CREATE INDEX runs_after_run ON runs (after_run) WHERE state = 'awaiting';
CREATE INDEX runs_after_batch ON runs (after_batch) WHERE after_batch IS NOT NULL;
CREATE INDEX runs_batch ON runs (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;

-- Per-tenant queue settings. A queue with no row is unpaused and unlimited.
CREATE TABLE queues (
    tenant_id         bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name              text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    paused            boolean NOT NULL DEFAULT false,
    -- Most runs of this tenant's queue running at once, across every runner.
    concurrency_limit integer CHECK (concurrency_limit > 0),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
CREATE INDEX queues_restricted ON queues (name) WHERE paused OR concurrency_limit IS NOT NULL;

-- Unique runs: the same key and request within the window return the same run.
CREATE TABLE idempotency_keys (
    tenant_id    bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL,
    run_id       uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- A continuation of a run that already ended is decided at insert: started at once when the
-- parent met the condition, refused (SQLSTATE SF001) when it never can.
CREATE FUNCTION sandfire_run_await_parent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent record;
BEGIN
    IF NEW.after_run IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT id, state, output INTO parent
    FROM runs WHERE id = NEW.after_run AND tenant_id = NEW.tenant_id
    FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no run with id % to wait for', NEW.after_run USING ERRCODE = 'SF002';
    END IF;
    IF parent.state NOT IN ('succeeded', 'failed', 'cancelled') THEN
        NEW.state := 'awaiting';
        RETURN NEW;
    END IF;
    IF NEW.after_on = 'finished' OR NEW.after_on = parent.state::text THEN
        NEW.state := 'enqueued';
        IF NEW.input_from_parent THEN
            NEW.input := coalesce(parent.output, 'null'::jsonb);
        END IF;
        NEW.state_reason := format('parent run %s already %s', parent.id, parent.state);
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'parent run % already ended %, so a continuation on % could never start',
        parent.id, parent.state, NEW.after_on USING ERRCODE = 'SF001';
END
$$;

CREATE TRIGGER runs_await_parent BEFORE INSERT ON runs
    FOR EACH ROW EXECUTE FUNCTION sandfire_run_await_parent();

-- When a run ends: start or cancel the continuations waiting for it, and, when it was the last
-- unfinished member of a batch, finish the batch and start or cancel the batch's continuations.
-- Cancelled continuations end too, so this cascades down chains of any length.
CREATE FUNCTION sandfire_run_resolve_dependents() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    all_succeeded boolean;
    batch_cancelled boolean;
BEGIN
    UPDATE runs c
    SET state = CASE WHEN c.after_on = 'finished' OR c.after_on = NEW.state::text
                     THEN 'enqueued'::run_state ELSE 'cancelled'::run_state END,
        input = CASE WHEN c.input_from_parent AND (c.after_on = 'finished'
                                                   OR c.after_on = NEW.state::text)
                     THEN coalesce(NEW.output, 'null'::jsonb) ELSE c.input END,
        finished_at = CASE WHEN c.after_on = 'finished' OR c.after_on = NEW.state::text
                           THEN NULL ELSE now() END,
        error = CASE WHEN c.after_on = 'finished' OR c.after_on = NEW.state::text THEN NULL
                     ELSE format('parent run %s ended %s; this continuation waited for %s',
                                 NEW.id, NEW.state, c.after_on) END,
        scheduled_at = now(),
        state_reason = format('parent run %s %s', NEW.id, NEW.state)
    WHERE c.after_run = NEW.id AND c.state = 'awaiting';

    IF NEW.batch_id IS NOT NULL THEN
        -- Serialise the members' last transitions so exactly one of them finishes the batch.
        SELECT cancelled_at IS NOT NULL INTO batch_cancelled
        FROM batches WHERE id = NEW.batch_id FOR UPDATE;
        IF NOT EXISTS (SELECT 1 FROM runs
                       WHERE batch_id = NEW.batch_id
                         AND state NOT IN ('succeeded', 'failed', 'cancelled')) THEN
            UPDATE batches SET finished_at = now()
            WHERE id = NEW.batch_id AND finished_at IS NULL;
            all_succeeded := NOT EXISTS (SELECT 1 FROM runs
                                         WHERE batch_id = NEW.batch_id AND state <> 'succeeded');
            UPDATE runs c
            SET state = CASE WHEN NOT batch_cancelled
                              AND (c.after_on = 'finished'
                                   OR (c.after_on = 'succeeded' AND all_succeeded)
                                   OR (c.after_on = 'failed' AND NOT all_succeeded))
                             THEN 'enqueued'::run_state ELSE 'cancelled'::run_state END,
                finished_at = CASE WHEN NOT batch_cancelled
                                    AND (c.after_on = 'finished'
                                         OR (c.after_on = 'succeeded' AND all_succeeded)
                                         OR (c.after_on = 'failed' AND NOT all_succeeded))
                                   THEN NULL ELSE now() END,
                error = CASE WHEN batch_cancelled THEN format('batch %s was cancelled', NEW.batch_id)
                             WHEN c.after_on = 'succeeded' AND NOT all_succeeded
                             THEN format('not every run of batch %s succeeded', NEW.batch_id)
                             WHEN c.after_on = 'failed' AND all_succeeded
                             THEN format('every run of batch %s succeeded', NEW.batch_id)
                             ELSE NULL END,
                scheduled_at = now(),
                state_reason = format('batch %s finished', NEW.batch_id)
            WHERE c.after_batch = NEW.batch_id AND c.state = 'awaiting';
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_resolve_dependents AFTER UPDATE OF state ON runs
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state AND NEW.state IN ('succeeded', 'failed', 'cancelled'))
    EXECUTE FUNCTION sandfire_run_resolve_dependents();

-- Wake the promoters when a delayed run appears, so they can sleep until the exact due time.
CREATE OR REPLACE FUNCTION sandfire_run_transition_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_events (run_id, from_state, to_state, reason)
    VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.state END, NEW.state, NEW.state_reason);
    IF NEW.state = 'enqueued' THEN
        PERFORM pg_notify('sandfire_enqueued', NEW.queue);
    ELSIF NEW.state IN ('scheduled', 'retrying') THEN
        PERFORM pg_notify('sandfire_scheduled', '');
    END IF;
    RETURN NULL;
END
$$;
