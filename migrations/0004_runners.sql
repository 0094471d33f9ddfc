-- Many runners, one database: the runner registry and leader election for the maintenance
-- services. Liveness is judged only by the database clock.

CREATE TABLE runners (
    id           uuid PRIMARY KEY,
    host         text NOT NULL,
    version      text NOT NULL,
    queues       text[] NOT NULL,
    slots        integer NOT NULL CHECK (slots >= 0),
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runners_heartbeat ON runners (heartbeat_at);

-- One row per elected role (today: 'maintenance'). A runner holds it until `expires_at`,
-- extending it while alive; anyone may take it once it has expired.
CREATE TABLE leaders (
    role       text PRIMARY KEY,
    runner_id  uuid NOT NULL,
    elected_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
