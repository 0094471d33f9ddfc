//! The `sandfire` command line, apart from `serve`: client commands that talk to a runner's
//! HTTP API (never to the database), `sandfire new` (a job crate scaffold) and `job deploy`.
//!
//! People get aligned tables and colour on a terminal; `--json` prints the API's JSON as it is
//! for scripts. Errors are the API's own message (`error: quota exceeded: ...`), never a Rust
//! error chain. Exit codes: 0 success, 1 an API error or a run that did not succeed, 2 a usage
//! or local problem, 3 no runner reachable. One file per noun.

mod admin;
mod batches;
mod client;
mod config_entries;
mod jobs;
mod output;
mod queues;
mod runs;
mod scaffold;
mod schedules;
pub mod serve_config;

use std::process::ExitCode;

use clap::Subcommand;

pub use admin::{KeyCommand, LimitsCommand, TenantCommand};
pub use batches::BatchCommand;
pub use client::{CliError, CliResult};
pub use config_entries::ConfigCommand;
pub use jobs::JobCommand;
pub use queues::QueueCommand;
pub use runs::RunCommand;
pub use scaffold::NewArgs;
pub use schedules::ScheduleCommand;

/// Where the runner is, who we are, and how to print.
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
    /// Tenant API key (tenant commands); `SANDFIRE_KEY` works too.
    #[arg(long, env = "SANDFIRE_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Admin token (admin commands, and `serve`).
    #[arg(
        long,
        env = "SANDFIRE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub admin_token: Option<String>,
    /// Print the API's JSON as it is (for scripts) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The client commands, flattened into `sandfire`'s own.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a job crate in ./NAME that builds as is.
    New(NewArgs),
    /// Upload, deploy, list and inspect jobs (tenant key).
    #[command(subcommand)]
    Job(JobCommand),
    /// Start, follow, list and control runs (tenant key).
    #[command(subcommand)]
    Run(RunCommand),
    /// Recurring runs (tenant key).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Runs created together with continuations (tenant key).
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Queues: pause, resume, concurrency limits (tenant key).
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Config entries and secrets that granted jobs read (tenant key).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage tenants (admin token).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage tenants' API keys (admin token).
    #[command(subcommand)]
    Key(KeyCommand),
    /// A tenant's quotas (admin token).
    #[command(subcommand)]
    Limits(LimitsCommand),
}

/// What every command needs.
pub struct Ctx {
    client: client::Client,
    json: bool,
    style: output::Style,
}

/// Runs a client command; prints its error as `error: <message>`, returns the exit code.
pub async fn run(args: &ClientArgs, cmd: ClientCommand) -> ExitCode {
    let ctx = Ctx {
        client: client::Client::new(args),
        json: args.json,
        style: output::Style::detect(),
    };
    let result = match cmd {
        ClientCommand::New(a) => scaffold::new(a),
        ClientCommand::Job(c) => jobs::command(&ctx, c).await,
        ClientCommand::Run(c) => runs::command(&ctx, c).await,
        ClientCommand::Schedule(c) => schedules::command(&ctx, c).await,
        ClientCommand::Batch(c) => batches::command(&ctx, c).await,
        ClientCommand::Queue(c) => queues::command(&ctx, c).await,
        ClientCommand::Config(c) => config_entries::command(&ctx, c).await,
        ClientCommand::Tenant(c) => admin::tenant(&ctx, c).await,
        ClientCommand::Key(c) => admin::key(&ctx, c).await,
        ClientCommand::Limits(c) => admin::limits(&ctx, c).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if ctx.json
                && let Some(body) = &e.body
            {
                output::print_json(body);
            }
            let stderr_style = output::Style {
                colour: ctx.style.colour && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            eprintln!("{} {}", stderr_style.red("error:"), e.message);
            ExitCode::from(e.code)
        }
    }
}
