//! `sandfire queue ...`: a tenant's queues: what waits and runs, pause, resume, concurrency.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::Ctx;
use super::client::{Auth, Body, CliError, CliResult, enc};
use super::output::outln;
use super::output::{Table, print_json, text};
use super::runs::done;

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queues with their waiting and running runs.
    List,
    /// Pause a queue: its runs wait until it is resumed.
    Pause { name: String },
    /// Resume a paused queue.
    Resume { name: String },
    /// Set a queue's concurrency limit across all runners ("none" removes it).
    Limit { name: String, limit: String },
}

pub async fn command(ctx: &Ctx, cmd: QueueCommand) -> CliResult {
    let c = &ctx.client;
    let path = |name: &str, rest: &str| format!("/v1/queues/{}{rest}", enc(name));
    match cmd {
        QueueCommand::List => {
            let v = c.get(Auth::Tenant, "/v1/queues").await?;
            if ctx.json {
                print_json(&v);
                return Ok(());
            }
            let queues = v["queues"].as_array().cloned().unwrap_or_default();
            if queues.is_empty() {
                outln!("no queues with runs or settings");
                return Ok(());
            }
            let mut t = Table::new(&[
                "QUEUE",
                "STATUS",
                "LIMIT",
                "ENQUEUED",
                "RUNNING",
                "SCHEDULED",
                "RETRYING",
            ]);
            for q in &queues {
                let count = |s: &str| q["counts"][s].as_i64().unwrap_or(0).to_string();
                t.row(vec![
                    text(&q["name"]),
                    if q["paused"] == json!(true) {
                        ctx.style.state("paused")
                    } else {
                        "active".into()
                    },
                    match &q["concurrency_limit"] {
                        Value::Null => "none".into(),
                        v => text(v),
                    },
                    count("enqueued"),
                    count("running"),
                    count("scheduled"),
                    count("retrying"),
                ]);
            }
            t.print(ctx.style);
            Ok(())
        }
        QueueCommand::Pause { name } => {
            let q = c
                .send(Auth::Tenant, Method::POST, &path(&name, "/pause"), None)
                .await?;
            done(ctx, &q, || format!("queue {name}: paused"))
        }
        QueueCommand::Resume { name } => {
            let q = c
                .send(Auth::Tenant, Method::POST, &path(&name, "/resume"), None)
                .await?;
            done(ctx, &q, || format!("queue {name}: resumed"))
        }
        QueueCommand::Limit { name, limit } => {
            let value = match limit.as_str() {
                "none" | "unlimited" => Value::Null,
                n => json!(n.parse::<i64>().map_err(|_| CliError::usage(format!(
                    "{n:?} is not a limit: pass a number from 1 to 100000, or none"
                )))?),
            };
            let q = c
                .send(
                    Auth::Tenant,
                    Method::PUT,
                    &path(&name, ""),
                    Some(Body::Json(json!({"concurrency_limit": value}))),
                )
                .await?;
            done(ctx, &q, || match &q["concurrency_limit"] {
                Value::Null => format!("queue {name}: no concurrency limit"),
                v => format!("queue {name}: at most {} running at once", text(v)),
            })
        }
    }
}
