-- Compiled artifacts of uploaded components, produced by a runner's own engine (never bytes a
-- tenant supplied), so a 20-50 s compile of a Python or JavaScript component is paid once, at
-- upload, and not by every runner's first run. Keyed like `components` (per tenant: one
-- tenant's upload never makes another tenant's runs faster) plus the engine's compatibility
-- hash (wasmtime version and code-generation settings): a runner loads only artifacts its own
-- engine can, and compiles (then adds its own row) otherwise. Deleted with the component.
CREATE TABLE compiled_components (
    tenant_id  bigint NOT NULL,
    digest     text NOT NULL,
    engine     text NOT NULL CHECK (engine ~ '^[0-9a-f]{64}$'),
    artifact   bytea NOT NULL,
    size       integer NOT NULL CHECK (size = length(artifact)),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, digest, engine),
    FOREIGN KEY (tenant_id, digest) REFERENCES components (tenant_id, digest) ON DELETE CASCADE
);
-- The artifact is read whole and is already machine code: no compression attempt on write.
ALTER TABLE compiled_components ALTER COLUMN artifact SET STORAGE EXTERNAL;
