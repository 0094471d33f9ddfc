//! `sandfire`: the runner (`serve`) and client subcommands. Parses flags and the environment,
//! then hands over to the library.

use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use sandfire::cli::{self, ClientArgs, ClientCommand, serve_config};
use sandfire::config::Settings;
use sandfire::runner::{Runner, connect};

/// mimalloc instead of the C library's allocator: a run allocates and frees many small objects
/// on two threads (claims, the sandbox's host state, completions).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "sandfire",
    version,
    about = "Background jobs as sandboxed WebAssembly components",
    after_help = "Client commands read SANDFIRE_URL, SANDFIRE_API_KEY and SANDFIRE_ADMIN_TOKEN. \
                  See docs/cli.md."
)]
struct Cli {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a runner: HTTP API, workers and maintenance.
    Serve(Box<ServeArgs>),
    #[command(flatten)]
    Client(ClientCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Internal: compile a component read from stdin under an address-space limit (the
    /// runner's compile probe for uploads).
    #[command(hide = true)]
    CompileProbe(ProbeArgs),
}

#[derive(Debug, clap::Args)]
struct ProbeArgs {
    #[arg(long)]
    memory_bytes: u64,
    #[arg(long)]
    max_memory_bytes: u64,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// A TOML file of settings: keys are these flags without `--` (precedence: flag > env >
    /// file > default; see docs/operations.md).
    #[arg(long, env = "SANDFIRE_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Print the effective settings and where each came from, then exit.
    #[arg(long)]
    print_config: bool,
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Address the HTTP API listens on.
    #[arg(long, env = "SANDFIRE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Also serve Prometheus metrics (`GET /metrics`) WITHOUT auth on this address, for a
    /// scraper on a private network (on the API, /metrics takes the admin token).
    #[arg(long, env = "SANDFIRE_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Label per-run metrics with the tenant's name (one series per tenant: few tenants only).
    #[arg(long, env = "SANDFIRE_METRICS_TENANT_LABELS")]
    metrics_tenant_labels: bool,
    /// Attempts executed concurrently by this runner.
    #[arg(long, env = "SANDFIRE_SLOTS", default_value_t = 16)]
    slots: usize,
    /// Threads of this process that run attempts, requests and database work (default: one
    /// per core of the machine). Set it to the CPUs the process may really use when that is
    /// fewer (a container's CPU quota); see docs/operations.md for what it changes.
    #[arg(long, env = "SANDFIRE_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Queues this runner serves, comma-separated.
    #[arg(
        long,
        env = "SANDFIRE_QUEUES",
        value_delimiter = ',',
        default_value = "default"
    )]
    queues: Vec<String>,
    /// Serve the API only, never execute runs.
    #[arg(long)]
    no_worker: bool,
    /// Do not serve the dashboard (`/ui`).
    #[arg(long, env = "SANDFIRE_NO_UI")]
    no_ui: bool,
    /// Mark the dashboard's session cookie `Secure` (when it is served over https).
    #[arg(long, env = "SANDFIRE_UI_SECURE_COOKIE")]
    ui_secure_cookie: bool,
    /// Database connections of the dashboard (a pool of its own).
    #[arg(long, default_value_t = 4)]
    ui_pool_size: u32,
    /// The database cancels a dashboard statement running longer than this (e.g. "5s").
    #[arg(long, default_value = "5s", value_parser = duration)]
    ui_statement_timeout: Duration,
    /// Fallback poll interval when no notification arrives, in ms.
    #[arg(long, default_value_t = 1000)]
    poll_interval_ms: u64,
    /// Lease of a running attempt without heartbeat, in ms.
    #[arg(long, default_value_t = 30_000)]
    lease_ms: u64,
    /// Heartbeat interval, in ms.
    #[arg(long, default_value_t = 5_000)]
    heartbeat_ms: u64,
    /// On SIGTERM/SIGINT, how long running attempts may finish before being handed back, in ms.
    #[arg(long, default_value_t = 30_000)]
    grace_ms: u64,
    /// Largest memory a run may ask for, in MiB.
    #[arg(long, default_value_t = 512)]
    max_memory_mb: u32,
    /// Largest timeout a run may ask for, in ms.
    #[arg(long, default_value_t = 3_600_000)]
    max_timeout_ms: u64,
    /// Compiles of uploaded components that may run at once (each takes a core).
    #[arg(long, default_value_t = 1)]
    compile_concurrency: usize,
    /// Longest compile of an upload before it is refused with 422 `compile_timeout`.
    /// A Python or JavaScript component (12-18 MB) takes 15-30 s on an idle core.
    #[arg(long, default_value = "120s", value_parser = duration)]
    compile_timeout: Duration,
    /// How long an upload waits for a free compile slot before 503 with `Retry-After`.
    #[arg(long, default_value = "5s", value_parser = duration)]
    compile_queue_wait: Duration,
    /// Address space an upload's compile may use, in MiB (checked in a child process first;
    /// 0 compiles uploads in-process without that check).
    #[arg(long, default_value_t = 2048)]
    compile_memory_mb: u64,
    /// Memory for compiled components kept ready, all tenants together, in MiB.
    #[arg(long, default_value_t = 256)]
    cache_mb: usize,
    /// Memory for compiled components kept ready for one tenant, in MiB.
    #[arg(long, default_value_t = 64)]
    cache_tenant_mb: usize,
    /// Largest component upload, in bytes (a Python component is about 18 MB).
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    max_component_bytes: usize,
    /// TESTS ONLY: let jobs' outbound requests connect to loopback addresses (127.0.0.0/8,
    /// ::1), still only to hosts their grants allow. Every other local, private or metadata
    /// address stays refused. Warns at start.
    #[arg(long, env = "SANDFIRE_ALLOW_LOOPBACK_OUTBOUND")]
    allow_loopback_outbound: bool,
    /// Longest DNS lookup + connect + TLS handshake of a job's outbound request.
    #[arg(long, default_value = "10s", value_parser = duration)]
    outbound_connect_timeout: Duration,
    /// Longest wait for the response head of a job's outbound request.
    #[arg(long, default_value = "30s", value_parser = duration)]
    outbound_first_byte_timeout: Duration,
    /// Longest silence between two chunks of a response body.
    #[arg(long, default_value = "30s", value_parser = duration)]
    outbound_between_bytes_timeout: Duration,
    /// Largest request body a job may send, in bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    outbound_max_request_bytes: u64,
    /// Largest response body a job may receive, in bytes (a tenant's policy may lower it).
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    outbound_max_response_bytes: u64,
    /// Most outbound requests one attempt may make (a tenant's policy may lower it).
    #[arg(long, default_value_t = 100)]
    outbound_max_requests: u32,
    /// Open outbound connections of all attempts together.
    #[arg(long, default_value_t = 256)]
    outbound_max_connections: usize,
    /// Networks jobs' requests may never reach, on top of the built-in local, private and
    /// metadata ranges: internal services with public addresses, the runner's own. CIDRs or
    /// addresses, comma-separated.
    #[arg(
        long,
        env = "SANDFIRE_OUTBOUND_BLOCKED_NETWORKS",
        value_delimiter = ','
    )]
    outbound_blocked_networks: Vec<sandfire::sandbox::BlockedNetwork>,
    /// PEM file of CA certificates trusted for jobs' HTTPS requests beside the web PKI roots
    /// (a private CA).
    #[arg(long, env = "SANDFIRE_OUTBOUND_CA_FILE")]
    outbound_ca_file: Option<std::path::PathBuf>,
    /// Keep succeeded and cancelled runs this long (e.g. "7d").
    #[arg(long, default_value = "7d", value_parser = duration)]
    retention_succeeded: Duration,
    /// Keep failed runs this long (e.g. "30d").
    #[arg(long, default_value = "30d", value_parser = duration)]
    retention_failed: Duration,
    /// Delete job versions that are not current and no run references this long after upload.
    #[arg(long, default_value = "30d", value_parser = duration)]
    retention_versions: Duration,
    /// Keep the dashboard's 10-second statistics (the realtime chart) this long.
    #[arg(long, default_value = "2h", value_parser = duration)]
    retention_stats_fine: Duration,
    /// Keep the hourly and daily statistics (history charts, usage) this long.
    #[arg(long, default_value = "400d", value_parser = duration)]
    retention_stats: Duration,
    /// How often the leader checks the hot table `run_queue` for dead rows.
    #[arg(long, default_value = "2s", value_parser = duration)]
    vacuum_interval: Duration,
    /// Past this many dead rows, the leader vacuums `run_queue` (claims stay fast after bursts).
    #[arg(long, default_value_t = 2000)]
    vacuum_dead_rows: i64,
    /// How often a runner writes the sums of the attempts it ended (charts lag by this).
    #[arg(long, default_value = "5s", value_parser = duration)]
    stats_flush: Duration,
    /// How long an idempotency key names its run (e.g. "24h").
    #[arg(long, default_value = "24h", value_parser = duration)]
    idempotency_window: Duration,
    /// Snoozes one run may take before the next one fails it.
    #[arg(long, default_value_t = 100)]
    max_snoozes: u32,
    /// Database connections of the HTTP API.
    #[arg(long, alias = "db-connections", default_value_t = 16)]
    api_pool_size: u32,
    /// Database connections of the worker, heartbeats and maintenance (a pool of their own).
    #[arg(long, default_value_t = 16)]
    worker_pool_size: u32,
    /// A client must send a request's headers within this (e.g. "10s").
    #[arg(long, default_value = "10s", value_parser = duration)]
    header_timeout: Duration,
    /// A client must send a request's body within this (e.g. "30s"); 408 beyond.
    #[arg(long, default_value = "30s", value_parser = duration)]
    body_timeout: Duration,
    /// Largest request line plus headers, in bytes; 431 beyond.
    #[arg(long, default_value_t = 16 * 1024)]
    max_header_bytes: usize,
    /// Most open HTTP connections; further clients wait to be accepted.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Most HTTP requests handled at once; 503 overloaded (with Retry-After) beyond.
    #[arg(long, default_value_t = 512)]
    max_inflight_requests: usize,
    /// Largest list response (runs, log lines), in bytes; the page stops there with a cursor.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    response_budget_bytes: usize,
    /// Run inputs and outputs larger than this are left out of run lists, in bytes.
    #[arg(long, default_value_t = 4 * 1024)]
    list_value_bytes: usize,
    /// Key that encrypts tenants' config values at rest: base64 of 32 random bytes
    /// (`openssl rand -base64 32`), key id 1. Without any key, config and secrets are off.
    #[arg(long, env = "SANDFIRE_SECRETS_KEY", hide_env_values = true, value_parser = hidden)]
    secrets_key: Option<Hidden>,
    /// Keys for rotation: "1:<base64>,2:<base64>" (may add to --secrets-key, which is id 1).
    #[arg(long, env = "SANDFIRE_SECRETS_KEYS", hide_env_values = true, value_parser = hidden)]
    secrets_keys: Option<Hidden>,
    /// The key id that encrypts new values (default: the highest id given).
    #[arg(long, env = "SANDFIRE_SECRETS_KEY_ID")]
    secrets_key_id: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "SANDFIRE_LOG_JSON")]
    log_json: bool,
    /// Quota default: runs waiting or running per tenant ("none" for no limit).
    #[arg(long, default_value = "none", value_parser = limit::<i64>)]
    tenant_max_active_runs: Quota<i64>,
    /// Quota default: attempts executing at once per tenant, across all runners.
    #[arg(long, default_value = "none", value_parser = limit::<i32>)]
    tenant_max_running: Quota<i32>,
    /// Quota default: schedules per tenant.
    #[arg(long, default_value = "1000", value_parser = limit::<i32>)]
    tenant_max_schedules: Quota<i32>,
    /// Quota default: shortest interval between two fires of a schedule, in ms.
    #[arg(long, default_value = "1000", value_parser = limit::<i64>)]
    tenant_min_schedule_interval_ms: Quota<i64>,
    /// Quota default: runs a tenant may enqueue per second on this runner.
    #[arg(long, default_value = "none", value_parser = limit::<i32>)]
    tenant_enqueue_per_s: Quota<i32>,
    /// Quota default: jobs per tenant.
    #[arg(long, default_value = "1000", value_parser = limit::<i32>)]
    tenant_max_jobs: Quota<i32>,
    /// Quota default: versions per job.
    #[arg(long, default_value = "1000", value_parser = limit::<i32>)]
    tenant_max_versions_per_job: Quota<i32>,
    /// Quota default: bytes of log lines one attempt may write.
    #[arg(long, default_value = "8388608", value_parser = limit::<i64>)]
    tenant_max_log_bytes_per_attempt: Quota<i64>,
}

fn main() -> std::process::ExitCode {
    let (cli, serve_matches, from_file) = parse();
    let threads = match &cli.command {
        Command::Serve(args) => args.threads,
        _ => None,
    };
    let runtime = runtime(threads).expect("starting the tokio runtime");
    match cli.command {
        Command::Serve(args) => {
            if args.print_config {
                serve_config::print(&Cli::command(), &serve_matches, &from_file);
                return std::process::ExitCode::SUCCESS;
            }
            match runtime.block_on(serve(*args, cli.client.admin_token)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    std::process::ExitCode::from(1)
                }
            }
        }
        Command::Client(cmd) => runtime.block_on(cli::run(&cli.client, cmd)),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "sandfire", &mut script);
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            std::process::ExitCode::SUCCESS
        }
        Command::CompileProbe(a) => std::process::exit(sandfire::sandbox::probe::run_child(
            a.memory_bytes,
            a.max_memory_bytes,
        )),
    }
}

/// Parses the command line; for `serve --config FILE`, parses again with the file's settings
/// added under the flags and environment (flag > env > file > default).
/// The process's runtime: `threads` worker threads, or one per core.
fn runtime(threads: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = threads {
        builder.worker_threads(usize::from(n));
    }
    builder.build()
}

fn parse() -> (Cli, clap::ArgMatches, Vec<String>) {
    let root = Cli::command();
    let matches = root.clone().get_matches();
    let mut from_file = Vec::new();
    let matches = match matches.subcommand() {
        Some(("serve", sub)) => match sub.get_one::<std::path::PathBuf>("config") {
            Some(path) => {
                let extra = serve_config::file_args(&root, sub, path).unwrap_or_else(|e| {
                    eprintln!("error: {e}");
                    std::process::exit(2)
                });
                from_file = extra.keys;
                root.clone()
                    .get_matches_from(std::env::args_os().chain(extra.args))
            }
            None => matches,
        },
        _ => matches,
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let serve_matches = matches
        .subcommand_matches("serve")
        .cloned()
        .unwrap_or_default();
    (cli, serve_matches, from_file)
}

/// A flag's value that must never be printed (key material): `Debug` hides it.
#[derive(Clone)]
struct Hidden(String);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

fn hidden(text: &str) -> Result<Hidden, String> {
    Ok(Hidden(text.to_string()))
}

/// A quota flag's value: a number, or no limit.
#[derive(Debug, Clone, Copy)]
struct Quota<T>(Option<T>);

/// Parses a quota flag: a number, or "none" for no limit.
fn limit<T: std::str::FromStr>(text: &str) -> Result<Quota<T>, String> {
    if matches!(text, "none" | "unlimited") {
        return Ok(Quota(None));
    }
    text.parse()
        .map(|v| Quota(Some(v)))
        .map_err(|_| format!("{text:?} is not a number (or \"none\" for no limit)"))
}

/// A duration flag such as "90s", "30m", "7d".
fn duration(text: &str) -> Result<Duration, String> {
    sandfire::config::parse_duration_ms(text).map(Duration::from_millis)
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,cranelift=warn,wasmtime=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(args: ServeArgs, admin_token: Option<String>) -> anyhow::Result<()> {
    let database_url = args.database_url.clone().filter(|u| !u.is_empty());
    let Some(database_url) = database_url else {
        anyhow::bail!(
            "sandfire serve needs a PostgreSQL database, and none is set.\n  \
             Set DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/DB (or --database-url, or \
             `database-url` in the --config file).\n  \
             To try Sandfire locally, run `make run` in the source tree: it starts a throwaway \
             PostgreSQL and a runner."
        )
    };
    init_tracing(args.log_json);
    let mut settings = Settings {
        admin_token: admin_token.filter(|t| !t.is_empty()),
        max_component_bytes: args.max_component_bytes,
        ..Settings::default()
    };
    settings.metrics.listen = args.metrics_listen.clone();
    settings.metrics.tenant_labels = args.metrics_tenant_labels;
    settings.worker.slots = args.slots.max(1);
    settings.worker.queues = args.queues;
    settings.worker.enabled = !args.no_worker;
    settings.ui.enabled = !args.no_ui;
    settings.ui.secure_cookie = args.ui_secure_cookie;
    settings.ui.pool_size = args.ui_pool_size.max(1);
    settings.ui.statement_timeout = args.ui_statement_timeout;
    settings.worker.poll_interval = Duration::from_millis(args.poll_interval_ms.max(10));
    settings.worker.lease = Duration::from_millis(args.lease_ms);
    settings.worker.heartbeat = Duration::from_millis(args.heartbeat_ms);
    settings.limits.max_memory_mb = args.max_memory_mb;
    settings.limits.max_snoozes = args.max_snoozes;
    settings.limits.idempotency_window_ms = args.idempotency_window.as_millis() as u64;
    settings.retention.retention_succeeded = args.retention_succeeded;
    settings.retention.retention_failed = args.retention_failed;
    settings.retention.retention_versions = args.retention_versions;
    settings.retention.retention_stats_fine = args.retention_stats_fine;
    settings.retention.retention_stats = args.retention_stats;
    settings.worker.stats_flush = args.stats_flush;
    settings.retention.vacuum_interval = args.vacuum_interval;
    settings.retention.vacuum_dead_rows = args.vacuum_dead_rows.max(0);
    settings.limits.max_timeout_ms = args.max_timeout_ms;
    for lowered in settings.limits.clamp_defaults() {
        tracing::warn!("{lowered}");
    }
    settings.sandbox.compile_concurrency = args.compile_concurrency.max(1);
    settings.sandbox.compile_timeout = args.compile_timeout;
    settings.sandbox.compile_queue_wait = args.compile_queue_wait;
    if args.compile_memory_mb > 0 {
        settings.sandbox.compile_probe = Some(sandfire::sandbox::probe::ProbeConfig {
            program: std::env::current_exe().context("finding the sandfire executable")?,
            memory_bytes: args.compile_memory_mb.saturating_mul(1024 * 1024),
        });
    }
    settings.sandbox.outbound = sandfire::sandbox::OutboundConfig {
        connect_timeout: args.outbound_connect_timeout,
        first_byte_timeout: args.outbound_first_byte_timeout,
        between_bytes_timeout: args.outbound_between_bytes_timeout,
        max_request_body_bytes: args.outbound_max_request_bytes,
        max_response_body_bytes: args.outbound_max_response_bytes,
        max_requests_per_attempt: args.outbound_max_requests,
        max_connections: args.outbound_max_connections.max(1),
        allow_loopback: args.allow_loopback_outbound,
        blocked_networks: args.outbound_blocked_networks.clone(),
        extra_roots: match &args.outbound_ca_file {
            None => Vec::new(),
            Some(path) => sandfire::sandbox::read_pem_certificates(path)
                .with_context(|| format!("--outbound-ca-file {}", path.display()))?,
        },
    };
    if args.allow_loopback_outbound {
        tracing::warn!(
            "--allow-loopback-outbound is set: jobs may reach loopback addresses their grants \
             allow. This is for tests only; never set it on a shared runner"
        );
    }
    settings.sandbox.cache_bytes = args.cache_mb.saturating_mul(1024 * 1024);
    settings.sandbox.cache_tenant_bytes = args.cache_tenant_mb.saturating_mul(1024 * 1024);
    settings.quotas = sandfire::config::TenantLimits {
        max_active_runs: args.tenant_max_active_runs.0,
        max_running: args.tenant_max_running.0,
        max_schedules: args.tenant_max_schedules.0,
        min_schedule_interval_ms: args.tenant_min_schedule_interval_ms.0,
        enqueue_per_s: args.tenant_enqueue_per_s.0,
        max_jobs: args.tenant_max_jobs.0,
        max_versions_per_job: args.tenant_max_versions_per_job.0,
        max_log_bytes_per_attempt: args.tenant_max_log_bytes_per_attempt.0,
    };
    settings.check().map_err(anyhow::Error::msg)?;
    settings.keyring = sandfire::capabilities::Keyring::from_env_values(
        args.secrets_key.as_ref().map(|k| k.0.as_str()),
        args.secrets_keys.as_ref().map(|k| k.0.as_str()),
        args.secrets_key_id.as_deref(),
    )
    .context("the config encryption keys (SANDFIRE_SECRETS_KEY / SANDFIRE_SECRETS_KEYS)")?
    .map(std::sync::Arc::new);
    match &settings.keyring {
        Some(ring) => tracing::info!(
            key_ids = ?ring.key_ids(),
            active_key_id = ring.active_key_id(),
            "config encryption keys loaded"
        ),
        None => tracing::warn!(
            "SANDFIRE_SECRETS_KEY is not set: config and secrets (/v1/config) are off"
        ),
    }
    settings.api_pool_size = args.api_pool_size.max(1);
    settings.worker_pool_size = args.worker_pool_size.max(1);
    settings.http.header_timeout = args.header_timeout.max(Duration::from_millis(100));
    settings.http.body_timeout = args.body_timeout.max(Duration::from_millis(100));
    // hyper needs room for at least one read buffer.
    settings.http.max_header_bytes = args.max_header_bytes.max(1024);
    settings.http.max_connections = args.max_connections.max(1);
    settings.http.max_inflight_requests = args.max_inflight_requests.max(1);
    settings.http.response_budget_bytes = args.response_budget_bytes.max(64 * 1024);
    settings.http.list_value_bytes = args.list_value_bytes;
    for queue in &settings.worker.queues {
        anyhow::ensure!(
            sandfire::config::valid_queue_name(queue),
            "--queues: {queue:?} is not a queue name"
        );
    }
    if settings.admin_token.is_none() {
        tracing::warn!("SANDFIRE_ADMIN_TOKEN is not set: admin routes (/v1/tenants) are off");
    }
    // A runner starting while the database is down waits for it instead of exiting.
    let store = loop {
        // (Runner::start then applies migrations, waiting out outages itself.)
        match connect(&database_url, settings.api_pool_size).await {
            Ok(store) => break store,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "database not reachable yet; retrying in 1 s"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    let runner = Runner::start(
        settings,
        std::sync::Arc::new(store),
        listener,
        Duration::from_millis(args.grace_ms),
    )
    .await?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing running attempts");
    runner.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_runtime_has_the_threads_asked_for() {
        for n in [1u16, 3] {
            let runtime = super::runtime(Some(n)).unwrap();
            assert_eq!(runtime.metrics().num_workers(), usize::from(n));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(super::runtime(None).unwrap().metrics().num_workers(), cores);
    }
}
