-- Attempts given back because the runner, not the job, failed them (instance pool full, the
-- component could not be loaded). Each one refunds the attempt (max_attempts + 1); this counter
-- caps those refunds so a run can never be retried for free forever.
ALTER TABLE runs ADD COLUMN runner_faults integer NOT NULL DEFAULT 0
    CONSTRAINT runner_faults_not_negative CHECK (runner_faults >= 0);
