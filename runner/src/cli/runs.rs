//! `sandfire run ...`: start runs (and wait for them with live progress and logs), list, show,
//! follow logs, cancel, retry, delete. Waiting polls the API; it never talks to the database.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::Ctx;
use super::client::{Auth, Body, CliError, CliResult, enc};
use super::output::outln;
use super::output::{
    Style, Table, bytes, json_arg, print_fields, print_json, printable, text, time,
};

/// How often `--wait` and `--follow` ask for news: quick enough to feel live, cheap for the API.
const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Enqueue a run of a job (with --wait: follow it to its end).
    Start(StartArgs),
    /// Show a run with its attempts and history.
    Get { id: String },
    /// List runs, newest first.
    List(ListArgs),
    /// Print a run's log lines (with --follow: until the run ends).
    Logs {
        id: String,
        /// Keep printing new lines until the run ends.
        #[arg(long, short)]
        follow: bool,
        /// Only this attempt's lines.
        #[arg(long)]
        attempt: Option<u32>,
    },
    /// Cancel a run that has not ended.
    Cancel { id: String },
    /// Run a failed or cancelled run again.
    Retry { id: String },
    /// Delete an ended run with its attempts and logs.
    Delete { id: String },
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The job's name.
    pub job: String,
    /// The run's input: JSON, or @file.json (@- reads stdin).
    #[arg(long, short)]
    pub input: Option<String>,
    /// Wait for the run to end, showing its progress and logs; exit 0 only if it succeeded.
    #[arg(long, short)]
    pub wait: bool,
    /// Queue the run waits in.
    #[arg(long)]
    pub queue: Option<String>,
    /// Priority among this tenant's runs in the queue.
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i32>,
    /// Run later: a duration such as 90s or 1h30m.
    #[arg(long)]
    pub delay: Option<String>,
    /// Most attempts, the first included.
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Wall-clock limit per attempt, in ms.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// The same key returns the existing run instead of a new one.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Any other request fields as a JSON object, e.g. '{"fuel": 100000000}'.
    #[arg(long)]
    pub options: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only runs in this state (enqueued, running, succeeded, failed, ...).
    #[arg(long)]
    pub state: Option<String>,
    /// Only runs of this job.
    #[arg(long)]
    pub job: Option<String>,
    /// Only runs in this queue (filtered by the CLI, page by page).
    #[arg(long)]
    pub queue: Option<String>,
    /// Most runs to show (1-500).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Continue after this run id (the `next` hint of the previous page).
    #[arg(long)]
    pub cursor: Option<String>,
}

pub async fn command(ctx: &Ctx, cmd: RunCommand) -> CliResult {
    match cmd {
        RunCommand::Start(args) => start(ctx, args).await,
        RunCommand::Get { id } => {
            let run = ctx.client.get(Auth::Tenant, &run_path(&id, "")).await?;
            if ctx.json {
                print_json(&run);
            } else {
                show_run(ctx.style, &run);
            }
            Ok(())
        }
        RunCommand::List(args) => list(ctx, args).await,
        RunCommand::Logs {
            id,
            follow,
            attempt,
        } => logs(ctx, &id, follow, attempt).await,
        RunCommand::Cancel { id } => {
            let run = ctx
                .client
                .send(Auth::Tenant, Method::POST, &run_path(&id, "/cancel"), None)
                .await?;
            done(ctx, &run, || {
                if run["cancel_requested"] == json!(true) {
                    format!("run {id}: cancel requested; it stops within about a second")
                } else {
                    format!("run {id}: {}", ctx.style.state("cancelled"))
                }
            })
        }
        RunCommand::Retry { id } => {
            let run = ctx
                .client
                .send(Auth::Tenant, Method::POST, &run_path(&id, "/retry"), None)
                .await?;
            done(ctx, &run, || {
                format!(
                    "run {id}: {} again (attempt {} next)",
                    ctx.style.state(run["state"].as_str().unwrap_or("enqueued")),
                    run["attempt"].as_i64().unwrap_or(0) + 1
                )
            })
        }
        RunCommand::Delete { id } => {
            let v = ctx
                .client
                .send(Auth::Tenant, Method::DELETE, &run_path(&id, ""), None)
                .await?;
            done(ctx, &v, || format!("run {id}: deleted"))
        }
    }
}

/// Prints the API's answer with `--json`, else one human line.
pub(super) fn done(ctx: &Ctx, v: &Value, human: impl FnOnce() -> String) -> CliResult {
    if ctx.json {
        if !v.is_null() {
            print_json(v);
        }
    } else {
        outln!("{}", human());
    }
    Ok(())
}

fn run_path(id: &str, rest: &str) -> String {
    format!("/v1/runs/{}{rest}", enc(id))
}

fn is_terminal_state(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "cancelled")
}

async fn start(ctx: &Ctx, args: StartArgs) -> CliResult {
    let mut body = match &args.options {
        Some(o) => json_arg("--options", o)?,
        None => json!({}),
    };
    let Some(fields) = body.as_object_mut() else {
        return Err(CliError::usage(
            "--options must be a JSON object, e.g. '{\"fuel\": 100000000}'",
        ));
    };
    if let Some(input) = &args.input {
        fields.insert("input".into(), json_arg("--input", input)?);
    }
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            fields.insert(k.into(), v);
        }
    };
    set("queue", args.queue.map(Value::from));
    set("priority", args.priority.map(Value::from));
    set("delay", args.delay.map(Value::from));
    set("max_attempts", args.max_attempts.map(Value::from));
    set("timeout_ms", args.timeout_ms.map(Value::from));
    set("idempotency_key", args.idempotency_key.map(Value::from));
    let path = format!("/v1/jobs/{}/runs", enc(&args.job));
    let run = ctx
        .client
        .send(Auth::Tenant, Method::POST, &path, Some(Body::Json(body)))
        .await?;
    let id = run["id"].as_str().unwrap_or_default().to_string();
    if !args.wait {
        return done(ctx, &run, || {
            format!(
                "started run {id} (job {} v{}, {})",
                text(&run["job"]),
                text(&run["version"]),
                ctx.style.state(run["state"].as_str().unwrap_or(""))
            )
        });
    }
    if !ctx.json {
        eprintln!(
            "{}",
            ctx.style.dim(&format!(
                "run {id} (job {} v{}) {}; waiting for it to end (Ctrl-C stops waiting, not the run)",
                text(&run["job"]),
                text(&run["version"]),
                run["state"].as_str().unwrap_or("")
            ))
        );
    }
    let run = wait(ctx, &id).await?;
    finish(ctx, &run)
}

/// Polls the run until it ends, streaming its log lines and drawing its progress.
async fn wait(ctx: &Ctx, id: &str) -> CliResult<Value> {
    let mut bar = Bar::new(!ctx.json);
    let mut after = None;
    loop {
        if !ctx.json {
            drain_logs(ctx, id, None, &mut after, &mut bar).await?;
        }
        let run = ctx.client.get(Auth::Tenant, &run_path(id, "")).await?;
        let state = run["state"].as_str().unwrap_or_default();
        if is_terminal_state(state) {
            if !ctx.json {
                drain_logs(ctx, id, None, &mut after, &mut bar).await?;
            }
            bar.clear();
            return Ok(run);
        }
        bar.update(
            state,
            run["progress"].as_i64(),
            run["progress_message"].as_str(),
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The end of `run start --wait`: the output, or the error and a non-zero exit.
fn finish(ctx: &Ctx, run: &Value) -> CliResult {
    let state = run["state"].as_str().unwrap_or_default();
    let id = text(&run["id"]);
    let attempts = run["attempt"].as_i64().unwrap_or(0);
    if ctx.json {
        print_json(run);
    } else if state == "succeeded" {
        outln!(
            "{} run {id} succeeded (attempt {attempts})",
            ctx.style.state("✓")
        );
        if !run["output"].is_null() {
            // serde_json escapes every control character inside strings: safe to print.
            outln!(
                "{}",
                serde_json::to_string_pretty(&run["output"]).unwrap_or_default()
            );
        }
    }
    if state == "succeeded" {
        return Ok(());
    }
    let outcome = run["attempts"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|a| a["outcome"].as_str())
        .unwrap_or(state);
    Err(CliError::failed(format!(
        "run {id} {state} after {attempts} attempt{} ({outcome}): {}",
        if attempts == 1 { "" } else { "s" },
        run["error"].as_str().map(printable).unwrap_or_default()
    )))
}

async fn list(ctx: &Ctx, args: ListArgs) -> CliResult {
    if !(1..=500).contains(&args.limit) {
        return Err(CliError::usage("--limit: use a number from 1 to 500"));
    }
    let mut runs = Vec::new();
    let mut cursor = args.cursor.clone();
    let mut next = None;
    let mut last_page;
    // The API filters by state and job; a queue filter is applied here, page by page.
    loop {
        let mut query = vec![format!("limit={}", args.limit)];
        if let Some(s) = &args.state {
            query.push(format!("state={}", enc(s)));
        }
        if let Some(j) = &args.job {
            query.push(format!("job={}", enc(j)));
        }
        if let Some(c) = &cursor {
            query.push(format!("cursor={}", enc(c)));
        }
        let page = ctx
            .client
            .get(Auth::Tenant, &format!("/v1/runs?{}", query.join("&")))
            .await?;
        for run in page["runs"].as_array().into_iter().flatten() {
            if runs.len() < args.limit as usize
                && args
                    .queue
                    .as_deref()
                    .is_none_or(|q| run["queue"] == json!(q))
            {
                runs.push(run.clone());
                next = run["id"].as_str().map(str::to_string);
            }
        }
        cursor = page["next_cursor"].as_str().map(str::to_string);
        last_page = page;
        if args.queue.is_none() || cursor.is_none() || runs.len() >= args.limit as usize {
            break;
        }
    }
    if ctx.json {
        if args.queue.is_none() {
            print_json(&last_page);
        } else {
            print_json(&json!({"runs": runs, "next_cursor": cursor.and(next.clone())}));
        }
        return Ok(());
    }
    if runs.is_empty() {
        outln!("no runs");
        return Ok(());
    }
    let style = ctx.style;
    let mut table = Table::new(&["ID", "JOB", "STATE", "ATTEMPT", "QUEUE", "CREATED"]);
    for run in &runs {
        table.row(vec![
            text(&run["id"]),
            format!("{} v{}", text(&run["job"]), text(&run["version"])),
            style.state(run["state"].as_str().unwrap_or("")),
            format!("{}/{}", text(&run["attempt"]), text(&run["max_attempts"])),
            text(&run["queue"]),
            time(&run["created_at"]),
        ]);
    }
    table.print(style);
    if cursor.is_some()
        && let Some(next) = next
    {
        eprintln!("{}", style.dim(&format!("more: --cursor {next}")));
    }
    Ok(())
}

async fn logs(ctx: &Ctx, id: &str, follow: bool, attempt: Option<u32>) -> CliResult {
    if ctx.json && !follow {
        let mut path = run_path(id, "/logs");
        if let Some(a) = attempt {
            path.push_str(&format!("?attempt={a}"));
        }
        print_json(&ctx.client.get(Auth::Tenant, &path).await?);
        return Ok(());
    }
    let mut after = None;
    let mut bar = Bar::new(false);
    loop {
        // Read the state first: lines written before the run ended are all there after it.
        let ended = if follow {
            let run = ctx.client.get(Auth::Tenant, &run_path(id, "")).await?;
            is_terminal_state(run["state"].as_str().unwrap_or_default())
        } else {
            true
        };
        drain_logs(ctx, id, attempt, &mut after, &mut bar).await?;
        if ended {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Prints every log line after `after` (page by page) and moves `after` past them.
async fn drain_logs(
    ctx: &Ctx,
    id: &str,
    attempt: Option<u32>,
    after: &mut Option<i64>,
    bar: &mut Bar,
) -> CliResult {
    loop {
        let mut query = vec!["limit=1000".to_string()];
        if let Some(a) = after {
            query.push(format!("after={a}"));
        }
        if let Some(a) = attempt {
            query.push(format!("attempt={a}"));
        }
        let path = format!("{}?{}", run_path(id, "/logs"), query.join("&"));
        let page = ctx.client.get(Auth::Tenant, &path).await?;
        let lines = page["lines"].as_array().cloned().unwrap_or_default();
        if !lines.is_empty() {
            bar.clear();
        }
        for line in &lines {
            if ctx.json {
                outln!("{line}");
            } else {
                outln!("{}", log_line(ctx.style, line));
            }
            if let Some(n) = line["id"].as_i64() {
                *after = Some(n);
            }
        }
        bar.redraw();
        if page["next_after"].is_null() || lines.is_empty() {
            return Ok(());
        }
    }
}

/// One log line: time, level, message, fields; `[attempt N]` from the second attempt on.
fn log_line(style: Style, line: &Value) -> String {
    let at = line["at"]
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_default();
    let mut out = format!(
        "{} {} ",
        style.dim(&at),
        style.level(line["level"].as_str().unwrap_or("info"))
    );
    if let Some(n) = line["attempt"].as_i64().filter(|n| *n > 1) {
        out.push_str(&style.dim(&format!("[attempt {n}] ")));
    }
    out.push_str(&printable(line["message"].as_str().unwrap_or("")));
    if let Some(fields) = line["fields"].as_object() {
        for (k, v) in fields {
            out.push_str(&style.dim(&format!(" {}={}", printable(k), text(v))));
        }
    }
    out
}

/// A progress bar on stderr while a run is waited for: drawn in place on a terminal, one line
/// per change otherwise.
struct Bar {
    enabled: bool,
    terminal: bool,
    drawn: Option<String>,
    last: Option<String>,
}

impl Bar {
    fn new(enabled: bool) -> Bar {
        Bar {
            enabled,
            terminal: std::io::stderr().is_terminal(),
            drawn: None,
            last: None,
        }
    }

    fn update(&mut self, state: &str, percent: Option<i64>, message: Option<&str>) {
        if !self.enabled {
            return;
        }
        let message = message.map(printable).unwrap_or_default();
        let line = match percent.map(|p| p.clamp(0, 100)) {
            Some(percent) if self.terminal => {
                let filled = (percent / 5) as usize;
                format!(
                    "[{}{}] {percent:>3}% {state} {message}",
                    "#".repeat(filled),
                    "-".repeat(20 - filled)
                )
            }
            Some(percent) => format!("progress: {percent}% {state} {message}"),
            None if self.terminal => format!("{state}..."),
            None => format!("state: {state}"),
        };
        if self.last.as_deref() == Some(line.as_str()) {
            return;
        }
        self.last = Some(line.clone());
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
            self.drawn = Some(line);
        } else {
            eprintln!("{}", line.trim_end());
        }
    }

    fn clear(&mut self) {
        if self.drawn.is_some() {
            let _ = std::io::stdout().flush();
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }

    fn redraw(&mut self) {
        if let Some(line) = &self.drawn {
            let _ = std::io::stdout().flush();
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.clear();
        self.drawn = None;
    }
}

/// `run get`: the run's fields, then its attempts and history.
fn show_run(style: Style, run: &Value) {
    let progress = match run["progress"].as_i64() {
        Some(p) => format!("{p}% {}", text(&run["progress_message"])),
        None => String::new(),
    };
    print_fields(
        style,
        &[
            ("id", text(&run["id"])),
            (
                "job",
                format!("{} v{}", text(&run["job"]), text(&run["version"])),
            ),
            ("state", style.state(run["state"].as_str().unwrap_or(""))),
            (
                "attempt",
                format!("{}/{}", text(&run["attempt"]), text(&run["max_attempts"])),
            ),
            (
                "queue",
                format!(
                    "{} (priority {})",
                    text(&run["queue"]),
                    text(&run["priority"])
                ),
            ),
            ("created", time(&run["created_at"])),
            ("scheduled", time(&run["scheduled_at"])),
            ("started", time(&run["started_at"])),
            ("finished", time(&run["finished_at"])),
            ("progress", progress.trim_end().to_string()),
            ("input", text(&run["input"])),
            ("output", text(&run["output"])),
            ("error", text(&run["error"])),
        ],
    );
    let attempts = run["attempts"].as_array().cloned().unwrap_or_default();
    if !attempts.is_empty() {
        outln!();
        let mut t = Table::new(&["ATTEMPT", "OUTCOME", "DURATION", "FUEL", "MEMORY", "ERROR"]);
        for a in &attempts {
            t.row(vec![
                text(&a["number"]),
                style.state(a["outcome"].as_str().unwrap_or("running")),
                a["duration_ms"]
                    .as_i64()
                    .map(|ms| format!("{ms} ms"))
                    .unwrap_or_default(),
                text(&a["fuel_used"]),
                bytes(&a["peak_memory"]),
                text(&a["error"]),
            ]);
        }
        t.print(style);
    }
    let history = run["history"].as_array().cloned().unwrap_or_default();
    if !history.is_empty() {
        outln!();
        let mut t = Table::new(&["AT", "FROM", "TO", "REASON"]);
        for h in &history {
            t.row(vec![
                time(&h["at"]),
                text(&h["from"]),
                style.state(h["to"].as_str().unwrap_or("")),
                text(&h["reason"]),
            ]);
        }
        t.print(style);
    }
}
