-- Dashboard sessions (`/ui`). Any runner sharing the database can serve a session, so they live
-- here, not in a runner's memory. Only a SHA-256 of the session id (the cookie's value) is
-- stored: a copy of this table lets no one sign in.
--
-- A session is tied to the credential it was opened with: `key_hash` is the API key's hash
-- (joined to `api_keys` on every request, so disabling the key or its tenant ends the session
-- at once) or, for `admin`, a SHA-256 of the admin token (changing the token ends admin
-- sessions).
CREATE TABLE ui_sessions (
    id_hash      bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    admin        boolean NOT NULL,
    key_hash     bytea NOT NULL CHECK (length(key_hash) = 32),
    -- The role when the session opened; the key's current role is what counts.
    role         text NOT NULL CHECK (role IN ('full', 'read')),
    tenant_id    bigint REFERENCES tenants (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_unless_admin CHECK (admin = (tenant_id IS NULL)),
    CONSTRAINT admin_is_full CHECK (NOT admin OR role = 'full'),
    CONSTRAINT expires_after_created CHECK (expires_at > created_at)
);
-- Expired sessions are deleted when someone signs in (oldest first, bounded).
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);
