//! `sandfire config ...`: a tenant's config entries (variables and secrets) that granted jobs
//! read. A secret's value is never shown (the API never returns it).

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::Ctx;
use super::client::{Auth, Body, CliResult, enc};
use super::output::outln;
use super::output::{Table, print_json, text, time};
use super::runs::done;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Create or replace an entry (a secret unless --plain).
    Put {
        name: String,
        value: String,
        /// A plain variable whose value may be listed (default: a secret).
        #[arg(long)]
        plain: bool,
    },
    /// List entries (a secret's value is never shown).
    List,
    /// Delete an entry.
    Delete { name: String },
}

pub async fn command(ctx: &Ctx, cmd: ConfigCommand) -> CliResult {
    let c = &ctx.client;
    match cmd {
        ConfigCommand::Put { name, value, plain } => {
            let body = json!({"value": value, "secret": !plain});
            let v = c
                .send(
                    Auth::Tenant,
                    Method::PUT,
                    &format!("/v1/config/{}", enc(&name)),
                    Some(Body::Json(body)),
                )
                .await?;
            done(ctx, &v, || {
                format!(
                    "config {name}: set ({})",
                    if plain { "plain" } else { "secret" }
                )
            })
        }
        ConfigCommand::List => {
            let v = c.get(Auth::Tenant, "/v1/config").await?;
            if ctx.json {
                print_json(&v);
                return Ok(());
            }
            let entries = v["config"].as_array().cloned().unwrap_or_default();
            if entries.is_empty() {
                outln!("no config entries");
                return Ok(());
            }
            let mut t = Table::new(&["NAME", "KIND", "VALUE", "UPDATED"]);
            for e in &entries {
                let secret = e["secret"] == json!(true);
                t.row(vec![
                    text(&e["name"]),
                    if secret { "secret" } else { "plain" }.into(),
                    if secret {
                        ctx.style.dim("(hidden)")
                    } else {
                        text(&e["value"])
                    },
                    time(&e["updated_at"]),
                ]);
            }
            t.print(ctx.style);
            Ok(())
        }
        ConfigCommand::Delete { name } => {
            let v = c
                .send(
                    Auth::Tenant,
                    Method::DELETE,
                    &format!("/v1/config/{}", enc(&name)),
                    None,
                )
                .await?;
            done(ctx, &v, || format!("config {name}: deleted"))
        }
    }
}
