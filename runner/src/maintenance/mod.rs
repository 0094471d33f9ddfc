//! Maintenance services: the background work that moves runs along without a worker holding
//! them. One file per service, each run only by the elected leader (`leader`), and each safe
//! even if two ran at once (row locks with SKIP LOCKED, unique fire times, advisory locks).

pub mod cron;
pub mod leader;
pub mod promoter;
pub mod pruner;
pub mod rescuer;
pub mod vacuumer;
