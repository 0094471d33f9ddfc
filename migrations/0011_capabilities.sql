-- Capabilities: what a tenant's jobs may reach (outbound HTTP) and read (config and secrets).
-- See docs/capabilities.md. Deny by default everywhere: no policy row, an empty list or a
-- missing grant all mean "nothing".

-- The admin's ceiling for one tenant. No row = no network. The patterns are checked by the
-- runner (`capabilities::allowed_hosts`) before they are stored; the database only bounds them.
-- NULL limits mean "the runner's default".
CREATE TABLE tenant_policy (
    tenant_id                bigint PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    allowed_outbound_hosts   text[] NOT NULL DEFAULT '{}'
        CONSTRAINT tenant_policy_hosts_bounded CHECK (cardinality(allowed_outbound_hosts) <= 100),
    max_requests_per_attempt integer CHECK (max_requests_per_attempt >= 0),
    max_response_bytes       bigint CHECK (max_response_bytes >= 0),
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- The tenant's grant to one job (all its versions): hosts inside the tenant's ceiling (checked
-- at write, and again at every request against the ceiling as it is then) and config names.
ALTER TABLE jobs
    ADD COLUMN allowed_outbound_hosts text[] NOT NULL DEFAULT '{}'
        CONSTRAINT jobs_hosts_bounded CHECK (cardinality(allowed_outbound_hosts) <= 100),
    ADD COLUMN config text[] NOT NULL DEFAULT '{}'
        CONSTRAINT jobs_config_bounded CHECK (cardinality(config) <= 1000);

-- A tenant's config entries (variables and secrets), every value encrypted with AES-256-GCM
-- under the runner's key `key_id`, bound to (tenant_id, name, key_id) as associated data: a
-- ciphertext copied to another tenant or name does not decrypt. Plaintext is never stored.
CREATE TABLE tenant_config (
    tenant_id  bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text NOT NULL
        CONSTRAINT tenant_config_name CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$' AND position('__' IN name) = 0),
    secret     boolean NOT NULL,
    -- The value's ciphertext with its 16-byte tag; values are at most 64 KiB.
    ciphertext bytea NOT NULL CHECK (length(ciphertext) BETWEEN 16 AND 65536 + 16),
    nonce      bytea NOT NULL CHECK (length(nonce) = 12),
    key_id     integer NOT NULL CHECK (key_id > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

-- Rows still under an old key, for re-encryption after a rotation.
CREATE INDEX tenant_config_key_id ON tenant_config (key_id);

-- Per attempt: {"requests": N, "bytes_out": N, "bytes_in": N, "denied": N}; NULL when the
-- attempt made no outbound request.
ALTER TABLE attempts ADD COLUMN outbound jsonb;
