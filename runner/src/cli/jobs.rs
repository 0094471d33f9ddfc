//! `sandfire job ...`: upload, list and show jobs, grant capabilities, and `job deploy`, which
//! builds a job crate for `wasm32-wasip2` with cargo and uploads the component it produced.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::Ctx;
use super::client::{Auth, Body, CliError, CliResult, enc};
use super::output::outln;
use super::output::{Table, bytes, print_fields, print_json, text, time};
use super::runs::done;

const WASM_TARGET: &str = "wasm32-wasip2";

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Upload a component (`.wasm`) as the job's current version.
    Upload {
        name: String,
        file: PathBuf,
        /// Per-job defaults as query parameters, e.g. `max_attempts=3&timeout_ms=5000`.
        #[arg(long)]
        defaults: Option<String>,
    },
    /// Build the job crate in DIR for wasm32-wasip2 (release) and upload it.
    Deploy {
        /// The crate's directory.
        #[arg(long, default_value = ".")]
        path: PathBuf,
        /// The job's name (default: the crate's package name).
        #[arg(long)]
        name: Option<String>,
        /// Per-job defaults as query parameters, e.g. `max_attempts=3&timeout_ms=5000`.
        #[arg(long)]
        defaults: Option<String>,
    },
    /// Show one job with its versions and grant.
    Get { name: String },
    /// List jobs.
    List,
    /// Replace a job's grant: the outbound hosts and config names it may use.
    Grant {
        name: String,
        /// A host pattern the job may call, e.g. `https://api.example.com` (repeatable).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// A config entry the job may read (repeatable).
        #[arg(long = "config")]
        config: Vec<String>,
    },
}

pub async fn command(ctx: &Ctx, cmd: JobCommand) -> CliResult {
    match cmd {
        JobCommand::Upload {
            name,
            file,
            defaults,
        } => {
            let bytes = std::fs::read(&file).map_err(|e| {
                CliError::usage(format!("reading component {}: {e}", file.display()))
            })?;
            upload(ctx, &name, bytes, defaults.as_deref()).await
        }
        JobCommand::Deploy {
            path,
            name,
            defaults,
        } => {
            let (package, wasm) = build(&path)?;
            let name = name.unwrap_or(package);
            let bytes = std::fs::read(&wasm).map_err(|e| {
                CliError::usage(format!(
                    "reading the built component {}: {e}",
                    wasm.display()
                ))
            })?;
            upload(ctx, &name, bytes, defaults.as_deref()).await
        }
        JobCommand::Get { name } => {
            let job = ctx
                .client
                .get(Auth::Tenant, &format!("/v1/jobs/{}", enc(&name)))
                .await?;
            if ctx.json {
                print_json(&job);
                return Ok(());
            }
            let style = ctx.style;
            let caps = &job["capabilities"];
            let list = |v: &Value| {
                v.as_array()
                    .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            };
            print_fields(
                style,
                &[
                    ("name", text(&job["name"])),
                    ("version", text(&job["version"])),
                    ("digest", text(&job["digest"])),
                    ("size", bytes(&job["size"])),
                    ("defaults", defaults_text(&job["defaults"])),
                    ("hosts", list(&caps["allowed_outbound_hosts"])),
                    ("config", list(&caps["config"])),
                    ("updated", time(&job["updated_at"])),
                ],
            );
            let versions = job["versions"].as_array().cloned().unwrap_or_default();
            if !versions.is_empty() {
                outln!();
                let mut t = Table::new(&["VERSION", "DIGEST", "SIZE", "CREATED"]);
                for v in &versions {
                    t.row(vec![
                        text(&v["version"]),
                        short_digest(&v["digest"]),
                        bytes(&v["size"]),
                        time(&v["created_at"]),
                    ]);
                }
                t.print(style);
            }
            Ok(())
        }
        JobCommand::List => {
            let v = ctx.client.get(Auth::Tenant, "/v1/jobs").await?;
            if ctx.json {
                print_json(&v);
                return Ok(());
            }
            let jobs = v["jobs"].as_array().cloned().unwrap_or_default();
            if jobs.is_empty() {
                outln!("no jobs: upload one with `sandfire job deploy` or `sandfire job upload`");
                return Ok(());
            }
            let mut t = Table::new(&["NAME", "VERSION", "SIZE", "DIGEST", "DEFAULTS", "UPDATED"]);
            for j in &jobs {
                t.row(vec![
                    text(&j["name"]),
                    text(&j["version"]),
                    bytes(&j["size"]),
                    short_digest(&j["digest"]),
                    defaults_text(&j["defaults"]),
                    time(&j["updated_at"]),
                ]);
            }
            t.print(ctx.style);
            Ok(())
        }
        JobCommand::Grant {
            name,
            hosts,
            config,
        } => {
            let body = json!({"allowed_outbound_hosts": hosts, "config": config});
            let path = format!("/v1/jobs/{}/capabilities", enc(&name));
            let v = ctx
                .client
                .send(Auth::Tenant, Method::PUT, &path, Some(Body::Json(body)))
                .await?;
            done(ctx, &v, || {
                format!(
                    "job {name} may now reach {} host pattern(s) and read {} config entr{}",
                    v["allowed_outbound_hosts"].as_array().map_or(0, Vec::len),
                    v["config"].as_array().map_or(0, Vec::len),
                    if v["config"].as_array().map_or(0, Vec::len) == 1 {
                        "y"
                    } else {
                        "ies"
                    }
                )
            })
        }
    }
}

fn short_digest(v: &Value) -> String {
    text(v).chars().take(12).collect()
}

fn defaults_text(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

async fn upload(ctx: &Ctx, name: &str, bytes_: Vec<u8>, defaults: Option<&str>) -> CliResult {
    let size = bytes_.len();
    let query = defaults.map(|d| format!("?{d}")).unwrap_or_default();
    let path = format!("/v1/jobs/{}{query}", enc(name));
    let job = ctx
        .client
        .send(Auth::Tenant, Method::PUT, &path, Some(Body::Bytes(bytes_)))
        .await?;
    done(ctx, &job, || {
        let what = if job["new_version"] == json!(true) {
            "uploaded"
        } else {
            "unchanged"
        };
        format!(
            "job {name} v{} {what} ({}, sha256 {}); start it with `sandfire run start {name} --wait`",
            text(&job["version"]),
            bytes(&json!(size)),
            short_digest(&job["digest"]),
        )
    })
}

/// Builds the crate in `dir` for wasm32-wasip2 in release mode; its package name and the `.wasm`.
fn build(dir: &Path) -> CliResult<(String, PathBuf)> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        CliError::usage(format!(
            "no job crate at {}: {e} (create one with `sandfire new NAME`, or pass --path DIR)",
            manifest.display()
        ))
    })?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| CliError::usage(format!("{}: {e}", manifest.display())))?;
    let package = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| CliError::usage(format!("{} has no [package] name", manifest.display())))?
        .to_string();
    ensure_target()?;
    eprintln!("building {package} for {WASM_TARGET} (release)...");
    let mut child = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            CliError::usage(format!(
                "could not run cargo: {e}; install Rust (rustup.rs)"
            ))
        })?;
    let stdout = child.stdout.take().expect("piped");
    let mut wasm = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" || msg["target"]["name"].is_null() {
            continue;
        }
        let is_lib = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
        // The crate's own library (its target name is the package name with `_` for `-`).
        if !is_lib || msg["target"]["name"] != json!(package.replace('-', "_")) {
            continue;
        }
        for f in msg["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = f.as_str().filter(|f| f.ends_with(".wasm")) {
                wasm = Some(PathBuf::from(f));
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| CliError::usage(format!("waiting for cargo: {e}")))?;
    if !status.success() {
        return Err(CliError::failed(format!(
            "cargo build failed for {} (see above)",
            manifest.display()
        )));
    }
    let wasm = wasm.ok_or_else(|| {
        CliError::usage(format!(
            "cargo built no .wasm for {package}: a job crate needs `[lib] crate-type = [\"cdylib\"]` \
             in {}",
            manifest.display()
        ))
    })?;
    Ok((package, wasm))
}

/// Adds the wasm32-wasip2 target with rustup when it is missing.
fn ensure_target() -> CliResult {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    else {
        // No rustup: cargo says what is missing if the target is not there.
        return Ok(());
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    eprintln!("adding the {WASM_TARGET} target: rustup target add {WASM_TARGET}");
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map_err(|e| CliError::usage(format!("running rustup: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "`rustup target add {WASM_TARGET}` failed (see above)"
        )))
    }
}
