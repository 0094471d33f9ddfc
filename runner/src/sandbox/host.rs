//! What a job can reach: the bindings of the `sandfire:job` WIT package, the per-attempt store
//! state, the `host` imports (log, progress, cancelled) and the linker granting exactly the
//! allowed WASI interfaces.
//!
//! Host imports run on the runner's threads with guest-supplied arguments: they must never
//! panic, block, or trap for something the guest may legitimately do (an over-long message is
//! truncated, not refused). The linker must never grant files, sockets or environment access
//! (the filesystem and sockets interfaces are linked deny-only, see
//! `link_denied_files_and_sockets`); `component::allowed_import` is the same list, checked at
//! upload time.

use std::sync::Arc;

use wasmtime::component::{HasData, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Result};
use wasmtime_wasi::p2::bindings as wasi;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::CancelFlag;
use super::grants::GrantCell;
use super::journal::{Journal, LogBounds};
use super::limits::MemoryLimiter;
use super::outbound::AttemptHttp;
use crate::model::Level;

wasmtime::component::bindgen!({
    world: "job",
    path: "../wit",
    imports: {
        // Reads the job's grants on first use (a database read), so it may await.
        "sandfire:job/config.get": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

use self::sandfire::job::config::Error as ConfigError;
pub(crate) use self::sandfire::job::types::Context as WitContext;

/// Handles (streams, pollables) a guest may hold at once: every one is host memory the guest
/// controls (guest-controlled resource exhaustion).
const MAX_HOST_RESOURCES: usize = 10_000;

/// Everything one attempt's `Store` holds.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    journal: Arc<Journal>,
    bounds: LogBounds,
    cancel: CancelFlag,
    grants: Arc<GrantCell>,
    http: WasiHttpCtx,
    http_hooks: AttemptHttp,
}

/// The parts of a `HostState` that come from the attempt.
pub(crate) struct AttemptParts {
    pub wasi: WasiCtx,
    pub limiter: MemoryLimiter,
    pub journal: Arc<Journal>,
    pub bounds: LogBounds,
    pub cancel: CancelFlag,
    pub grants: Arc<GrantCell>,
    pub http_hooks: AttemptHttp,
}

impl HostState {
    pub fn new(parts: AttemptParts) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HOST_RESOURCES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_HTTP_FIELDS_BYTES);
        HostState {
            wasi: parts.wasi,
            table,
            limiter: parts.limiter,
            journal: parts.journal,
            bounds: parts.bounds,
            cancel: parts.cancel,
            grants: parts.grants,
            http,
            http_hooks: parts.http_hooks,
        }
    }
}

/// Bytes of headers (in memory) one request or response may carry.
const MAX_HTTP_FIELDS_BYTES: usize = 64 * 1024;

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl self::sandfire::job::types::Host for HostState {}

impl self::sandfire::job::config::Host for HostState {
    async fn get(&mut self, name: String) -> Result<Result<Option<String>, ConfigError>> {
        let grants = match self.grants.get().await {
            Ok(grants) => grants,
            Err(e) => {
                return Ok(Err(ConfigError::Unavailable(format!(
                    "the runner could not read the job's config: {e}"
                ))));
            }
        };
        Ok(match grants.config.get(&name) {
            Some(value) => Ok(value.as_ref().map(|v| v.value.clone())),
            None => Err(ConfigError::NotGranted(format!(
                "config {name:?} is not granted to this job (PUT /v1/jobs/{{name}}/capabilities)"
            ))),
        })
    }
}

impl self::sandfire::job::host::Host for HostState {
    fn log(
        &mut self,
        level: self::sandfire::job::types::Level,
        message: String,
        fields: Vec<self::sandfire::job::types::Field>,
    ) -> Result<()> {
        let fields = fields.into_iter().map(|f| (f.key, f.value)).collect();
        self.journal
            .push(&self.bounds, level.into(), &message, fields);
        Ok(())
    }

    fn progress(&mut self, percent: u8, message: String) -> Result<()> {
        self.journal.set_progress(&self.bounds, percent, &message);
        Ok(())
    }

    fn cancelled(&mut self) -> Result<bool> {
        Ok(self.cancel.is_cancelled())
    }
}

impl From<self::sandfire::job::types::Level> for Level {
    fn from(level: self::sandfire::job::types::Level) -> Level {
        use self::sandfire::job::types::Level as Wit;
        match level {
            Wit::Trace => Level::Trace,
            Wit::Debug => Level::Debug,
            Wit::Info => Level::Info,
            Wit::Warn => Level::Warn,
            Wit::Error => Level::Error,
        }
    }
}

/// `wasi:io` works on the resource table directly.
struct IoView;

impl HasData for IoView {
    type Data<'a> = &'a mut ResourceTable;
}

/// The linker every attempt instantiates through: WASI 0.2 `io`, `cli`, `clocks` and `random`
/// (async flavour, since calls are `*_async`), `filesystem` and `sockets` deny-only, the
/// `sandfire:job` imports, and `wasi:http` (outgoing requests, each checked by `outbound`).
/// Nothing else is linked.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<HostState>> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView as _};

    type T = HostState;
    let mut linker = Linker::<T>::new(engine);
    let l = &mut linker;
    wasi::io::error::add_to_linker::<T, IoView>(l, |t| &mut t.table)?;
    wasi::io::poll::add_to_linker::<T, IoView>(l, |t| &mut t.table)?;
    wasi::io::streams::add_to_linker::<T, IoView>(l, |t| &mut t.table)?;
    wasi::clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    wasi::clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    wasi::random::random::add_to_linker::<T, WasiRandom>(l, T::random)?;
    wasi::random::insecure::add_to_linker::<T, WasiRandom>(l, T::random)?;
    wasi::random::insecure_seed::add_to_linker::<T, WasiRandom>(l, T::random)?;
    wasi::cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    link_denied_files_and_sockets(l)?;
    Job::add_to_linker::<T, HasSelf<T>>(l, |t| t)?;
    // Outbound HTTP: every request goes through the attempt's `AttemptHttp` hooks.
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(l)?;
    Ok(linker)
}

/// `wasi:filesystem/{types,preopens}` and `wasi:sockets/*`, linked because the Python and
/// JavaScript runtimes (componentize-py, componentize-js) import them whether or not a job
/// uses them, and granting nothing through them. What keeps them closed is the per-attempt
/// `WasiCtx` (`Sandbox::run_attempt`), whose builder defaults in wasmtime-wasi 48.0.8 are: no
/// preopened directories (`get-directories` is empty, so there is no descriptor to open a path
/// from), TCP, UDP and name lookup off (`PermissionDenied` → `access-denied`), and a
/// `socket_addr_check` that refuses every address. The run must never call `preopened_dir`,
/// `allow_tcp`, `allow_udp`, `allow_ip_name_lookup`, `inherit_network` or `socket_addr_check`
/// on that builder (`tests/langs.rs`: a Python job's `open` fails with `FileNotFoundError`).
fn link_denied_files_and_sockets(l: &mut Linker<HostState>) -> Result<()> {
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView as _};

    type T = HostState;
    wasi::filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    wasi::filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    wasi::sockets::network::add_to_linker::<T, WasiSockets>(l, &Default::default(), T::sockets)?;
    wasi::sockets::instance_network::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    wasi::sockets::tcp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    wasi::sockets::tcp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    wasi::sockets::udp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    wasi::sockets::udp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    wasi::sockets::ip_name_lookup::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    Ok(())
}
