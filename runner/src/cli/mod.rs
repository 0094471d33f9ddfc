//! Client subcommands: talk to a runner's HTTP API (never to the database directly), print the
//! JSON answer, and exit non-zero on an error answer.

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::{Value, json};

/// Where the runner is and who we are.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Base URL of the runner's API.
    #[arg(
        long,
        env = "SANDFIRE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// Tenant API key (tenant commands).
    #[arg(long, env = "SANDFIRE_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Admin token (admin commands).
    #[arg(
        long,
        env = "SANDFIRE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its first API key (shown once).
    Create { name: String },
    /// Create another API key for a tenant.
    Key { name: String },
    /// List tenants.
    List,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Upload a component (`.wasm`) as the job's current version.
    Upload {
        name: String,
        file: std::path::PathBuf,
        /// Per-job defaults as query parameters, e.g. `max_attempts=3&timeout_ms=5000`.
        #[arg(long)]
        defaults: Option<String>,
    },
    /// Show one job.
    Get { name: String },
    /// List jobs.
    List,
}

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Enqueue a run of a job.
    Start {
        job: String,
        /// The run's input as JSON.
        #[arg(long, default_value = "null")]
        input: String,
        /// Other request fields as a JSON object, e.g. '{"max_attempts": 3}'.
        #[arg(long)]
        options: Option<String>,
    },
    /// Show a run with its attempts and history.
    Get { id: String },
    /// List runs, newest first.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        job: Option<String>,
    },
    /// Print a run's log lines.
    Logs { id: String },
}

enum Auth<'a> {
    Admin(&'a ClientArgs),
    Tenant(&'a ClientArgs),
}

impl Auth<'_> {
    fn header(&self) -> anyhow::Result<String> {
        match self {
            Auth::Admin(a) => a
                .admin_token
                .as_deref()
                .map(|t| format!("Bearer {t}"))
                .context("set SANDFIRE_ADMIN_TOKEN (or --admin-token) for admin commands"),
            Auth::Tenant(a) => a
                .api_key
                .as_deref()
                .map(|k| format!("Bearer {k}"))
                .context("set SANDFIRE_API_KEY (or --api-key) to a tenant key"),
        }
    }
}

async fn send(
    auth: Auth<'_>,
    args: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<reqwest::Body>,
    json_body: bool,
) -> anyhow::Result<Value> {
    let url = format!("{}{}", args.url.trim_end_matches('/'), path);
    let mut req = reqwest::Client::new()
        .request(method, &url)
        .header("Authorization", auth.header()?);
    if let Some(body) = body {
        if json_body {
            req = req.header("Content-Type", "application/json");
        }
        req = req.body(body);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("could not reach the runner at {url}"))?;
    let status = resp.status();
    let value: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{status}: {}",
            value["error"]["message"]
                .as_str()
                .unwrap_or("no error message")
        );
    }
    Ok(value)
}

fn print(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

pub async fn tenant(args: &ClientArgs, cmd: TenantCommand) -> anyhow::Result<()> {
    use reqwest::Method;
    let v = match cmd {
        TenantCommand::Create { name } => {
            let body = json!({ "name": name }).to_string();
            send(
                Auth::Admin(args),
                args,
                Method::POST,
                "/v1/tenants",
                Some(body.into()),
                true,
            )
            .await?
        }
        TenantCommand::Key { name } => {
            let path = format!("/v1/tenants/{name}/keys");
            send(Auth::Admin(args), args, Method::POST, &path, None, false).await?
        }
        TenantCommand::List => {
            send(
                Auth::Admin(args),
                args,
                Method::GET,
                "/v1/tenants",
                None,
                false,
            )
            .await?
        }
    };
    print(&v);
    Ok(())
}

pub async fn job(args: &ClientArgs, cmd: JobCommand) -> anyhow::Result<()> {
    use reqwest::Method;
    let v = match cmd {
        JobCommand::Upload {
            name,
            file,
            defaults,
        } => {
            let bytes = std::fs::read(&file)
                .with_context(|| format!("reading component {}", file.display()))?;
            let query = defaults.map(|d| format!("?{d}")).unwrap_or_default();
            let path = format!("/v1/jobs/{name}{query}");
            send(
                Auth::Tenant(args),
                args,
                Method::PUT,
                &path,
                Some(bytes.into()),
                false,
            )
            .await?
        }
        JobCommand::Get { name } => {
            let path = format!("/v1/jobs/{name}");
            send(Auth::Tenant(args), args, Method::GET, &path, None, false).await?
        }
        JobCommand::List => {
            send(
                Auth::Tenant(args),
                args,
                Method::GET,
                "/v1/jobs",
                None,
                false,
            )
            .await?
        }
    };
    print(&v);
    Ok(())
}

pub async fn run(args: &ClientArgs, cmd: RunCommand) -> anyhow::Result<()> {
    use reqwest::Method;
    let v = match cmd {
        RunCommand::Start {
            job,
            input,
            options,
        } => {
            let input: Value =
                serde_json::from_str(&input).context("--input must be valid JSON")?;
            let mut body = match options {
                Some(o) => {
                    serde_json::from_str::<Value>(&o).context("--options must be a JSON object")?
                }
                None => json!({}),
            };
            if !body.is_object() {
                bail!("--options must be a JSON object");
            }
            body["input"] = input;
            let path = format!("/v1/jobs/{job}/runs");
            let body = body.to_string();
            send(
                Auth::Tenant(args),
                args,
                Method::POST,
                &path,
                Some(body.into()),
                true,
            )
            .await?
        }
        RunCommand::Get { id } => {
            let path = format!("/v1/runs/{id}");
            send(Auth::Tenant(args), args, Method::GET, &path, None, false).await?
        }
        RunCommand::List { state, job } => {
            let mut query = Vec::new();
            if let Some(s) = state {
                query.push(format!("state={s}"));
            }
            if let Some(j) = job {
                query.push(format!("job={j}"));
            }
            let path = format!("/v1/runs?{}", query.join("&"));
            send(Auth::Tenant(args), args, Method::GET, &path, None, false).await?
        }
        RunCommand::Logs { id } => {
            let path = format!("/v1/runs/{id}/logs");
            let v = send(Auth::Tenant(args), args, Method::GET, &path, None, false).await?;
            for line in v["lines"].as_array().into_iter().flatten() {
                println!(
                    "{} attempt {} {:>5} {} {}",
                    line["at"].as_str().unwrap_or(""),
                    line["attempt"],
                    line["level"].as_str().unwrap_or(""),
                    printable(line["message"].as_str().unwrap_or("")),
                    match &line["fields"] {
                        Value::Object(m) if !m.is_empty() => line["fields"].to_string(),
                        _ => String::new(),
                    }
                );
            }
            return Ok(());
        }
    };
    print(&v);
    Ok(())
}

/// Guest text made safe for a terminal: control characters (escape sequences that could move
/// the cursor, recolour or rewrite the screen) are shown escaped, e.g. `\u{1b}`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn guest_text_cannot_send_terminal_escapes() {
        let shown = super::printable("red \u{1b}[31mtext\u{7}\ttab");
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{shown}"
        );
        assert!(
            shown.contains("\\u{1b}[31mtext") && shown.contains('\t'),
            "{shown}"
        );
    }
}
