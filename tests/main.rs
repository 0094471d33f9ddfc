//! Sandfire's integration tests: one binary, a real PostgreSQL (from `DATABASE_URL`, which
//! `make test` points at a throwaway cluster), the real example components from
//! `target/wasm32-wasip2/wasm/` (`make examples`), and real runners started in-process on
//! loopback sockets. Each test gets its own database, so tests run in parallel.

mod support;

mod batches;
mod capabilities;
mod chaos;
mod cli;
mod cluster;
mod control;
mod execution;
mod hostile_guests;
mod hot_path;
mod http_limits;
mod kinds;
mod langs;
mod metrics;
mod openapi;
mod outbound;
mod quotas;
mod retention;
mod schedules;
mod store;
mod tenancy;
mod ui;
mod upload;
