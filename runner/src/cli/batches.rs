//! `sandfire batch ...`: runs created together, with continuations, and their progress.

use clap::Subcommand;
use reqwest::Method;

use super::Ctx;
use super::client::{Auth, Body, CliError, CliResult, enc};
use super::output::outln;
use super::output::{Table, json_arg, print_fields, print_json, text, time};
use super::runs::done;

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Create a batch: SPEC is the body of POST /v1/batches
    /// ('{"runs": [...], "then": [...]}') as JSON, or @file.json.
    Create { spec: String },
    /// Show a batch's counts, progress and continuations.
    Get { id: String },
    /// Cancel every run of a batch that has not ended.
    Cancel { id: String },
}

pub async fn command(ctx: &Ctx, cmd: BatchCommand) -> CliResult {
    let c = &ctx.client;
    match cmd {
        BatchCommand::Create { spec } => {
            let body = json_arg("SPEC", &spec)?;
            if !body.is_object() {
                return Err(CliError::usage(
                    "SPEC must be a JSON object: {\"runs\": [{\"job\": \"hello\", \"input\": ...}], \"then\": [...]}",
                ));
            }
            let b = c
                .send(
                    Auth::Tenant,
                    Method::POST,
                    "/v1/batches",
                    Some(Body::Json(body)),
                )
                .await?;
            done(ctx, &b, || {
                format!(
                    "created batch {} with {} run(s) and {} continuation(s)",
                    text(&b["id"]),
                    text(&b["total"]),
                    b["then"].as_array().map_or(0, Vec::len)
                )
            })
        }
        BatchCommand::Get { id } => {
            let b = c
                .get(Auth::Tenant, &format!("/v1/batches/{}", enc(&id)))
                .await?;
            if ctx.json {
                print_json(&b);
                return Ok(());
            }
            let counts = b["counts"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(_, n)| n.as_i64() != Some(0))
                        .map(|(k, n)| format!("{} {}", text(n), ctx.style.state(k)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            print_fields(
                ctx.style,
                &[
                    ("id", text(&b["id"])),
                    ("runs", text(&b["total"])),
                    ("progress", format!("{}%", text(&b["progress"]))),
                    ("counts", counts),
                    ("created", time(&b["created_at"])),
                    ("finished", time(&b["finished_at"])),
                    ("cancelled", time(&b["cancelled_at"])),
                ],
            );
            let then = b["continuations"].as_array().cloned().unwrap_or_default();
            if !then.is_empty() {
                outln!();
                let mut t = Table::new(&["CONTINUATION", "JOB", "ON", "STATE"]);
                for r in &then {
                    t.row(vec![
                        text(&r["id"]),
                        text(&r["job"]),
                        text(&r["on"]),
                        ctx.style.state(r["state"].as_str().unwrap_or("")),
                    ]);
                }
                t.print(ctx.style);
            }
            Ok(())
        }
        BatchCommand::Cancel { id } => {
            let b = c
                .send(
                    Auth::Tenant,
                    Method::POST,
                    &format!("/v1/batches/{}/cancel", enc(&id)),
                    None,
                )
                .await?;
            done(ctx, &b, || format!("batch {id}: cancelled"))
        }
    }
}
