//! Admin commands (the runner's admin token): `sandfire tenant ...`, `sandfire key ...` and
//! `sandfire limits ...`.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::Ctx;
use super::client::{Auth, Body, CliError, CliResult, enc};
use super::output::outln;
use super::output::{Table, print_json, text, time};
use super::runs::done;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its first API key (shown once).
    Create { name: String },
    /// List tenants.
    List,
    /// Disable a tenant: its keys answer 401 and its runs are not claimed.
    Disable { name: String },
    /// Enable a disabled tenant.
    Enable { name: String },
    /// Set a tenant's share of claims (1-100, default 1).
    Weight { name: String, weight: i32 },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create another API key for a tenant (shown once).
    Create {
        tenant: String,
        /// A read-only key (default: full).
        #[arg(long)]
        read: bool,
    },
    /// List a tenant's keys (prefixes, roles, dates).
    List { tenant: String },
    /// Disable a key by its prefix, at once.
    Disable { tenant: String, prefix: String },
}

#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// Show a tenant's quotas, usage and refusals.
    Get { tenant: String },
    /// Change some of a tenant's quotas: LIMIT=VALUE ..., VALUE a number or `default` (the
    /// runner's). Others keep their value.
    Set {
        tenant: String,
        #[arg(required = true)]
        limits: Vec<String>,
    },
    /// Reset every quota of a tenant to the runner's defaults.
    Reset { tenant: String },
}

fn tenant_path(name: &str, rest: &str) -> String {
    format!("/v1/tenants/{}{rest}", enc(name))
}

pub async fn tenant(ctx: &Ctx, cmd: TenantCommand) -> CliResult {
    let c = &ctx.client;
    match cmd {
        TenantCommand::Create { name } => {
            let v = c
                .send(
                    Auth::Admin,
                    Method::POST,
                    "/v1/tenants",
                    Some(Body::Json(json!({ "name": name }))),
                )
                .await?;
            done(ctx, &v, || {
                format!(
                    "created tenant {name}; its API key (shown only now):\n\n  export SANDFIRE_API_KEY={}\n",
                    text(&v["api_key"])
                )
            })
        }
        TenantCommand::List => {
            let v = c.get(Auth::Admin, "/v1/tenants").await?;
            if ctx.json {
                print_json(&v);
                return Ok(());
            }
            let mut t = Table::new(&["TENANT", "STATUS", "CREATED"]);
            for tenant in v["tenants"].as_array().into_iter().flatten() {
                t.row(vec![
                    text(&tenant["name"]),
                    status(ctx, tenant),
                    time(&tenant["created_at"]),
                ]);
            }
            if t.is_empty() {
                outln!("no tenants: create one with `sandfire tenant create NAME`");
            } else {
                t.print(ctx.style);
            }
            Ok(())
        }
        TenantCommand::Disable { name } => {
            let v = c
                .send(
                    Auth::Admin,
                    Method::POST,
                    &tenant_path(&name, "/disable"),
                    None,
                )
                .await?;
            done(ctx, &v, || format!("tenant {name}: disabled"))
        }
        TenantCommand::Enable { name } => {
            let v = c
                .send(
                    Auth::Admin,
                    Method::POST,
                    &tenant_path(&name, "/enable"),
                    None,
                )
                .await?;
            done(ctx, &v, || format!("tenant {name}: enabled"))
        }
        TenantCommand::Weight { name, weight } => {
            let v = c
                .send(
                    Auth::Admin,
                    Method::PUT,
                    &tenant_path(&name, "/weight"),
                    Some(Body::Json(json!({ "weight": weight }))),
                )
                .await?;
            done(ctx, &v, || format!("tenant {name}: weight {weight}"))
        }
    }
}

fn status(ctx: &Ctx, v: &Value) -> String {
    if v["disabled_at"].is_null() {
        "enabled".into()
    } else {
        ctx.style.state("disabled")
    }
}

pub async fn key(ctx: &Ctx, cmd: KeyCommand) -> CliResult {
    let c = &ctx.client;
    match cmd {
        KeyCommand::Create { tenant, read } => {
            let role = if read { "read" } else { "full" };
            let v = c
                .send(
                    Auth::Admin,
                    Method::POST,
                    &tenant_path(&tenant, "/keys"),
                    Some(Body::Json(json!({ "role": role }))),
                )
                .await?;
            done(ctx, &v, || {
                format!(
                    "created a {role} key for {tenant} (shown only now):\n\n  export SANDFIRE_API_KEY={}\n",
                    text(&v["api_key"])
                )
            })
        }
        KeyCommand::List { tenant } => {
            let v = c.get(Auth::Admin, &tenant_path(&tenant, "/keys")).await?;
            if ctx.json {
                print_json(&v);
                return Ok(());
            }
            let mut t = Table::new(&["PREFIX", "ROLE", "STATUS", "CREATED"]);
            for k in v["keys"].as_array().into_iter().flatten() {
                t.row(vec![
                    text(&k["prefix"]),
                    text(&k["role"]),
                    status(ctx, k),
                    time(&k["created_at"]),
                ]);
            }
            t.print(ctx.style);
            Ok(())
        }
        KeyCommand::Disable { tenant, prefix } => {
            let path = format!("{}/{}", tenant_path(&tenant, "/keys"), enc(&prefix));
            let v = c.send(Auth::Admin, Method::DELETE, &path, None).await?;
            done(ctx, &v, || format!("key {prefix} of {tenant}: disabled"))
        }
    }
}

pub async fn limits(ctx: &Ctx, cmd: LimitsCommand) -> CliResult {
    let c = &ctx.client;
    let (tenant, body) = match cmd {
        LimitsCommand::Get { tenant } => {
            let v = c.get(Auth::Admin, &tenant_path(&tenant, "/limits")).await?;
            return show_limits(ctx, &v);
        }
        LimitsCommand::Reset { tenant } => (tenant, json!({})),
        LimitsCommand::Set { tenant, limits } => {
            // The API replaces the whole set: start from the tenant's own values.
            let current = c.get(Auth::Admin, &tenant_path(&tenant, "/limits")).await?;
            let mut own: Map<String, Value> = current["own"]
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .collect();
            for item in &limits {
                let (k, v) = item.split_once('=').ok_or_else(|| {
                    CliError::usage(format!("{item:?}: write LIMIT=VALUE, e.g. max_running=8"))
                })?;
                let k = k.trim().replace('-', "_");
                match v.trim() {
                    "default" => {
                        own.remove(&k);
                    }
                    "none" | "unlimited" => {
                        return Err(CliError::usage(format!(
                            "{item:?}: a tenant's own limit is a number; `default` falls back \
                             to the runner's (which may be none)"
                        )));
                    }
                    n => {
                        let n: i64 = n.parse().map_err(|_| {
                            CliError::usage(format!(
                                "{item:?}: the value must be a number, `none` or `default`"
                            ))
                        })?;
                        own.insert(k, json!(n));
                    }
                }
            }
            (tenant, Value::Object(own))
        }
    };
    let v = c
        .send(
            Auth::Admin,
            Method::PUT,
            &tenant_path(&tenant, "/limits"),
            Some(Body::Json(body)),
        )
        .await?;
    show_limits(ctx, &v)
}

fn show_limits(ctx: &Ctx, v: &Value) -> CliResult {
    if ctx.json {
        print_json(v);
        return Ok(());
    }
    let usage_of = |limit: &str| -> &str {
        match limit {
            "max_active_runs" => "active_runs",
            "max_running" => "running",
            "max_schedules" => "schedules",
            "max_jobs" => "jobs",
            "max_versions_per_job" => "max_versions_of_a_job",
            _ => "",
        }
    };
    let mut t = Table::new(&["LIMIT", "VALUE", "SOURCE", "USAGE"]);
    for (k, value) in v["limits"].as_object().into_iter().flatten() {
        let own = !v["own"][k].is_null();
        t.row(vec![
            k.clone(),
            match value {
                Value::Null => "none".into(),
                other => text(other),
            },
            if own { "tenant" } else { "runner default" }.into(),
            text(&v["usage"][usage_of(k)]),
        ]);
    }
    outln!("tenant {}", text(&v["tenant"]));
    t.print(ctx.style);
    let hits = v["limit_hits"].as_array().cloned().unwrap_or_default();
    if !hits.is_empty() {
        outln!();
        let mut h = Table::new(&["DAY", "LIMIT", "REFUSALS"]);
        for hit in &hits {
            h.row(vec![
                text(&hit["day"]),
                text(&hit["limit"]),
                text(&hit["hits"]),
            ]);
        }
        h.print(ctx.style);
    }
    Ok(())
}
