-- Tenant safety: key roles, operator quotas per tenant, and a record of quota refusals.

-- A key's role: `full` may change what its tenant owns, `read` may only read it.
ALTER TABLE api_keys ADD COLUMN role text NOT NULL DEFAULT 'full' CHECK (role IN ('full', 'read'));
CREATE INDEX api_keys_tenant_prefix ON api_keys (tenant_id, prefix);

-- Operator-set limits of one tenant. A NULL column means "the runner's default" (its flag), so
-- changing a flag changes every tenant that has no limit of its own.
CREATE TABLE tenant_limits (
    tenant_id                 bigint PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    max_active_runs           bigint CHECK (max_active_runs >= 0),
    max_running               integer CHECK (max_running >= 0),
    max_schedules             integer CHECK (max_schedules >= 0),
    min_schedule_interval_ms  bigint CHECK (min_schedule_interval_ms >= 0),
    enqueue_per_s             integer CHECK (enqueue_per_s > 0),
    max_jobs                  integer CHECK (max_jobs >= 0),
    max_versions_per_job      integer CHECK (max_versions_per_job > 0),
    max_log_bytes_per_attempt bigint CHECK (max_log_bytes_per_attempt >= 0),
    updated_at                timestamptz NOT NULL DEFAULT now()
);

-- How often each limit refused a tenant's request, per day (the dashboard shows these next to
-- the limits). Written after the refusal, outside the request's own statements.
CREATE TABLE tenant_limit_hits (
    tenant_id  bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day        date NOT NULL,
    limit_name text NOT NULL,
    hits       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, limit_name)
);

-- Active runs per tenant are counted from the hot table (bounded by the limit, so a count
-- never reads more than limit + 1 entries).
CREATE INDEX run_queue_tenant ON run_queue (tenant_id);

-- Whether any run references a job version (deleting a version, pruning unused ones).
CREATE INDEX runs_job_version ON runs (job_id, version);
