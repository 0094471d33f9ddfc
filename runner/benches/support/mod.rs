//! What every benchmark needs: knobs from the environment, a fresh database of its own on
//! `DATABASE_URL`'s server, and percentiles. Included by each bench with `#[path]`.
//!
//! - `server`: a runner as its own process (the release binary) and a client of its HTTP API;
//! - `drain`: draining enqueued runs with such a runner, watched cheaply from the database;
//! - `procfs`: CPU time of the runner and of the PostgreSQL cluster from `/proc`.

#![allow(dead_code)] // Each bench uses a different part.

pub mod drain;
pub mod procfs;
pub mod server;

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// A knob from the environment, or its default.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0.0..=1.0) of sorted values; NaN when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Creates an empty database next to the one `admin_url` names and returns its URL.
pub async fn fresh_database(admin_url: &str) -> anyhow::Result<String> {
    let mut conn = PgConnection::connect(admin_url).await?;
    let name = format!("sandfire_bench_{}", Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let (base, _) = admin_url.rsplit_once('/').unwrap_or((admin_url, ""));
    Ok(format!("{base}/{name}"))
}

/// A knob that is on when set to anything but "", "0" or "false".
pub fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The `DATABASE_URL` every bench needs (`make bench` sets it).
pub fn admin_url() -> anyhow::Result<String> {
    std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not set: run `make bench`"))
}

/// A figure with a unit, or "n/a".
pub fn fmt_opt(value: Option<f64>, decimals: usize, unit: &str) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}{unit}"),
        _ => "n/a".to_string(),
    }
}

/// Words of `text` in lines of at most `width` characters.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
