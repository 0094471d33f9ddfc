-- The single-column rules of `runs` (attempt >= 0, fuel > 0, progress between 0 and 100, ...)
-- become domains instead of table CHECK constraints. Same rules, same refusals; what changes
-- is their cost. PostgreSQL 15 reads a table's CHECK constraints back from their stored text
-- and prepares them again for every statement that writes the table (`ExecRelCheck`): for a
-- single enqueue, whose statement writes one row, the 17 constraints of `runs` and the 2 of
-- `run_queue` were about 60 µs of its roughly 350 µs (measured with `pgbench`, one client,
-- durable commits). A domain's rule is prepared once per connection (the type cache) and only
-- checked when a value is written to that column. The ten single-column rules below were
-- about 13 µs of those 60; the rules that relate columns (the state machine's, e.g.
-- `lease_iff_running`) stay table constraints.
--
-- No table rewrite and no scan, so the migration holds its lock on `runs` for a moment even
-- with millions of rows: each column first changes to a domain without a rule (a relabel),
-- the table constraint is dropped, then the domain gets its rule `NOT VALID`: the rows stored
-- satisfied the same rule as a table constraint until this transaction dropped it, and every
-- value written from now on is checked (NOT VALID only skips re-checking the stored rows).

CREATE DOMAIN nonnegative_int AS integer;
CREATE DOMAIN positive_int AS integer;
CREATE DOMAIN nonnegative_bigint AS bigint;
CREATE DOMAIN positive_bigint AS bigint;
CREATE DOMAIN percent AS smallint;
CREATE DOMAIN continuation_condition AS text;

ALTER TABLE runs
    ALTER COLUMN attempt TYPE nonnegative_int,
    ALTER COLUMN snoozes TYPE nonnegative_int,
    ALTER COLUMN runner_faults TYPE nonnegative_int,
    ALTER COLUMN max_attempts TYPE positive_int,
    ALTER COLUMN memory_mb TYPE positive_int,
    ALTER COLUMN backoff_base_ms TYPE nonnegative_bigint,
    ALTER COLUMN timeout_ms TYPE positive_bigint,
    ALTER COLUMN fuel TYPE positive_bigint,
    ALTER COLUMN progress TYPE percent,
    ALTER COLUMN after_on TYPE continuation_condition,
    DROP CONSTRAINT runs_attempt_check,
    DROP CONSTRAINT runs_snoozes_check,
    DROP CONSTRAINT runner_faults_not_negative,
    DROP CONSTRAINT runs_max_attempts_check,
    DROP CONSTRAINT runs_memory_mb_check,
    DROP CONSTRAINT runs_backoff_base_ms_check,
    DROP CONSTRAINT runs_timeout_ms_check,
    DROP CONSTRAINT runs_fuel_check,
    DROP CONSTRAINT runs_progress_check,
    DROP CONSTRAINT runs_after_on_check;

ALTER DOMAIN nonnegative_int ADD CONSTRAINT nonnegative_int_check CHECK (VALUE >= 0) NOT VALID;
ALTER DOMAIN positive_int ADD CONSTRAINT positive_int_check CHECK (VALUE > 0) NOT VALID;
ALTER DOMAIN nonnegative_bigint ADD CONSTRAINT nonnegative_bigint_check CHECK (VALUE >= 0) NOT VALID;
ALTER DOMAIN positive_bigint ADD CONSTRAINT positive_bigint_check CHECK (VALUE > 0) NOT VALID;
ALTER DOMAIN percent ADD CONSTRAINT percent_check CHECK (VALUE BETWEEN 0 AND 100) NOT VALID;
ALTER DOMAIN continuation_condition ADD CONSTRAINT continuation_condition_check
    CHECK (VALUE IN ('succeeded', 'failed', 'finished')) NOT VALID;
