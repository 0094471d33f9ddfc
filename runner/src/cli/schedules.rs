//! `sandfire schedule ...`: recurring runs (cron) of a tenant's jobs.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::Ctx;
use super::client::{Auth, Body, CliError, CliResult, enc};
use super::output::outln;
use super::output::{Table, json_arg, print_fields, print_json, text, time};
use super::runs::done;

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create or replace a schedule.
    Put {
        name: String,
        /// The job to run.
        #[arg(long)]
        job: String,
        /// Cron expression (5 or 6 fields, or @daily-style macros).
        #[arg(long)]
        cron: String,
        /// IANA time zone (default UTC).
        #[arg(long)]
        timezone: Option<String>,
        /// Each run's input: JSON, or @file.json.
        #[arg(long)]
        input: Option<String>,
        /// skip, fire_once or fire_all.
        #[arg(long)]
        misfire: Option<String>,
        /// allow or skip (skip a fire while the previous run is still active).
        #[arg(long)]
        overlap: Option<String>,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
        /// Any other fields (run options) as a JSON object, e.g. '{"queue": "sync"}'.
        #[arg(long)]
        options: Option<String>,
    },
    /// List schedules with their next fire time.
    List,
    /// Show a schedule with its next fire times and last runs.
    Get { name: String },
    /// Pause a schedule (no fires until resumed).
    Pause { name: String },
    /// Resume a paused schedule.
    Resume { name: String },
    /// Run the schedule's job now.
    Trigger { name: String },
    /// Delete a schedule.
    Delete { name: String },
}

fn path(name: &str, rest: &str) -> String {
    format!("/v1/schedules/{}{rest}", enc(name))
}

pub async fn command(ctx: &Ctx, cmd: ScheduleCommand) -> CliResult {
    let c = &ctx.client;
    match cmd {
        ScheduleCommand::Put {
            name,
            job,
            cron,
            timezone,
            input,
            misfire,
            overlap,
            paused,
            options,
        } => {
            let mut body = match &options {
                Some(o) => json_arg("--options", o)?,
                None => json!({}),
            };
            let Some(fields) = body.as_object_mut() else {
                return Err(CliError::usage("--options must be a JSON object"));
            };
            fields.insert("job".into(), json!(job));
            fields.insert("cron".into(), json!(cron));
            fields.insert("paused".into(), json!(paused));
            if let Some(tz) = timezone {
                fields.insert("timezone".into(), json!(tz));
            }
            if let Some(i) = input {
                fields.insert("input".into(), json_arg("--input", &i)?);
            }
            if let Some(m) = misfire {
                fields.insert("misfire".into(), json!(m));
            }
            if let Some(o) = overlap {
                fields.insert("overlap".into(), json!(o));
            }
            let s = c
                .send(
                    Auth::Tenant,
                    Method::PUT,
                    &path(&name, ""),
                    Some(Body::Json(body)),
                )
                .await?;
            done(ctx, &s, || {
                format!(
                    "schedule {name}: {} {} ({}), next fire {}",
                    text(&s["job"]),
                    text(&s["cron"]),
                    text(&s["timezone"]),
                    next_fire(&s)
                )
            })
        }
        ScheduleCommand::List => {
            let v = c.get(Auth::Tenant, "/v1/schedules?limit=500").await?;
            if ctx.json {
                print_json(&v);
                return Ok(());
            }
            let items = v["schedules"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                outln!("no schedules");
                return Ok(());
            }
            let mut t = Table::new(&["NAME", "JOB", "CRON", "TIMEZONE", "STATUS", "NEXT FIRE"]);
            for s in &items {
                t.row(vec![
                    text(&s["name"]),
                    text(&s["job"]),
                    text(&s["cron"]),
                    text(&s["timezone"]),
                    status(ctx, s),
                    next_fire(s),
                ]);
            }
            t.print(ctx.style);
            Ok(())
        }
        ScheduleCommand::Get { name } => {
            let s = c.get(Auth::Tenant, &path(&name, "")).await?;
            if ctx.json {
                print_json(&s);
                return Ok(());
            }
            let fires: Vec<String> = s["next_fire_times"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| text(&f["local"]))
                .collect();
            print_fields(
                ctx.style,
                &[
                    ("name", text(&s["name"])),
                    ("job", text(&s["job"])),
                    ("cron", text(&s["cron"])),
                    ("timezone", text(&s["timezone"])),
                    ("status", status(ctx, &s)),
                    ("input", text(&s["input"])),
                    ("misfire", text(&s["misfire"]["policy"])),
                    ("overlap", text(&s["overlap"])),
                    ("next fires", fires.join("\n            ")),
                    ("updated", time(&s["updated_at"])),
                ],
            );
            let runs = s["last_runs"].as_array().cloned().unwrap_or_default();
            if !runs.is_empty() {
                outln!();
                let mut t = Table::new(&["RUN", "STATE", "FIRE TIME"]);
                for r in &runs {
                    t.row(vec![
                        text(&r["id"]),
                        ctx.style.state(r["state"].as_str().unwrap_or("")),
                        time(&r["fire_at"]),
                    ]);
                }
                t.print(ctx.style);
            }
            Ok(())
        }
        ScheduleCommand::Pause { name } => {
            let s = c
                .send(Auth::Tenant, Method::POST, &path(&name, "/pause"), None)
                .await?;
            done(ctx, &s, || format!("schedule {name}: paused"))
        }
        ScheduleCommand::Resume { name } => {
            let s = c
                .send(Auth::Tenant, Method::POST, &path(&name, "/resume"), None)
                .await?;
            done(ctx, &s, || {
                format!("schedule {name}: resumed, next fire {}", next_fire(&s))
            })
        }
        ScheduleCommand::Trigger { name } => {
            let run = c
                .send(Auth::Tenant, Method::POST, &path(&name, "/trigger"), None)
                .await?;
            done(ctx, &run, || {
                format!(
                    "schedule {name}: started run {} (follow it with `sandfire run logs {} --follow`)",
                    text(&run["id"]),
                    text(&run["id"])
                )
            })
        }
        ScheduleCommand::Delete { name } => {
            let v = c
                .send(Auth::Tenant, Method::DELETE, &path(&name, ""), None)
                .await?;
            done(ctx, &v, || format!("schedule {name}: deleted"))
        }
    }
}

fn status(ctx: &Ctx, s: &Value) -> String {
    if s["paused"] == json!(true) {
        ctx.style.state("paused")
    } else {
        "active".to_string()
    }
}

fn next_fire(s: &Value) -> String {
    match time(&s["next_fire_at"]) {
        t if t.is_empty() => "none".to_string(),
        t => format!("{t} UTC"),
    }
}
