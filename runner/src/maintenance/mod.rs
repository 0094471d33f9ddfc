//! Maintenance services: the background work that moves runs along without a worker holding
//! them. One file per service. Each is safe to run on many runners at once (row locks with
//! SKIP LOCKED); leader election comes with the services that need a single actor.

pub mod promoter;
