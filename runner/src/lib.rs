//! Sandfire runner: background jobs as sandboxed WebAssembly components, persisted in PostgreSQL.
//!
//! Module map (see DESIGN.md): `api` serves HTTP, `store` is the only code that speaks SQL,
//! `worker` claims and executes runs, `sandbox` is the only code that touches wasmtime,
//! `maintenance` runs the background services, `runner` puts one process together, `cli` holds
//! the client subcommands, `ui` serves the dashboard, `stats` sums ended attempts for its charts and usage,
//! `metrics` counts what the runner does for Prometheus (`/metrics`).
//! `capabilities` decides what a job may reach (outbound hosts) and read (config and secrets).

pub mod api;
pub mod auth;
pub mod backoff;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod maintenance;
pub mod metrics;
pub mod model;
pub mod runner;
pub mod sandbox;
pub mod schedule;
pub mod server;
pub mod stats;
pub mod store;
pub mod ui;
pub mod worker;

pub use api::app;
