//! Turning tenant bytes into something we can run: the header checks, the compile, the import
//! allow-list and the world check, shared by upload-time validation and run-time preparation.
//!
//! Everything here treats the bytes as hostile. It must never load precompiled artifacts from
//! a tenant (`Component::deserialize` only ever sees artifacts a runner produced itself, see
//! `load_artifact`), and never accept a component that imports an interface outside the grant,
//! even one the linker happens to provide.

use std::fmt;
use std::time::Duration;

use wasmparser::{Parser, Payload, Validator};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::engine::{DISABLED_PROPOSALS, allowed_features, disabled_features};
use super::host::{HostState, JobPre};
use super::limits::MAX_TABLE_ELEMENTS;

/// Why an uploaded component cannot be used. Each maps to HTTP 422 (except `CompilerBusy`:
/// 503 with `Retry-After`), its `Display` as the message: it says what is wrong and how to fix
/// it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComponentError {
    #[error(
        "the upload is not WebAssembly (it does not start with the `\\0asm` magic bytes): upload \
         the .wasm file produced by `cargo build --release --target wasm32-wasip2`"
    )]
    NotWasm,
    #[error(
        "the upload is a core WebAssembly module, not a component: build for wasm32-wasip2 \
         (`rustup target add wasm32-wasip2`, then `cargo build --release --target wasm32-wasip2`) \
         so the output is a WASI 0.2 component"
    )]
    CoreModule,
    #[error(
        "the component is not valid or cannot be compiled: {0}. Rebuild it for wasm32-wasip2 \
         with a current toolchain"
    )]
    Invalid(String),
    #[error(
        "the component imports {} this runner does not grant: {}. Jobs may import only \
         wasi:io, wasi:cli, wasi:clocks, wasi:random, wasi:filesystem and wasi:sockets (0.2.x; \
         files and sockets are always denied) and sandfire:job/host, types and config (0.1.x): \
         remove the code that uses the others",
        if .0.len() == 1 { "an interface" } else { "interfaces" },
        .0.join(", ")
    )]
    DisallowedImports(Vec<String>),
    #[error(
        "the component does not target the sandfire:job/job@0.1.0 world (it must export `run: \
         func(ctx: context, input: list<u8>) -> result<list<u8>, job-error>` and import only \
         what that world allows): {0}. Build it with the sandfire-guest SDK's `#[job]` \
         attribute or wit-bindgen on wit/job.wit"
    )]
    WrongWorld(String),
    #[error(
        "the component uses the WebAssembly {} proposal, which this runner does not enable: \
         rebuild it without (drop the `-C target-feature` or compiler option that turns it on); \
         components built for wasm32-wasip2 with default options never need it",
        .0.join(", ")
    )]
    UnsupportedProposal(Vec<String>),
    #[error(
        "the component is larger than this runner compiles: {0}. Split the job or make it \
         smaller"
    )]
    TooComplex(String),
    #[error(
        "compiling the component took longer than {} s, the most this runner allows: make \
         the component smaller (fewer or shorter functions)",
        .0.as_secs_f64()
    )]
    CompileTimeout(Duration),
    #[error("the runner is busy compiling other uploads: try again in {0} s")]
    CompilerBusy(u64),
    #[error(
        "compiling the component needed more than the {} MiB of memory this runner allows a \
         compile: make the component smaller (fewer or shorter functions)",
        .0 / (1024 * 1024)
    )]
    CompileMemory(u64),
    #[error(
        "the runner could not check the component (its compile probe failed to run); it is logged on the runner: try again later"
    )]
    ProbeFailed,
}

/// Why `Sandbox::prepare` could not produce a runnable component.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The bytes could not be fetched (the `load` callback failed) or did not match the digest.
    #[error("could not load the component: {0:#}")]
    Load(anyhow::Error),
    /// The stored bytes are not a usable component (possible if the rules tightened since upload).
    #[error(transparent)]
    Component(ComponentError),
}

/// A compiled, type-checked, pre-instantiated component: instantiating it for an attempt only
/// allocates a slot and runs initialisers.
pub struct Prepared {
    digest: String,
    imports: Vec<String>,
    pub(crate) pre: JobPre<HostState>,
    /// Approximate host memory held by this entry (bytes): what the cache budget counts.
    size: usize,
    /// Kept for `artifact` (it shares the compiled code with `pre`: no extra memory).
    component: Component,
}

impl Prepared {
    /// Lowercase hex SHA-256 of the component bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The component's imports (interface names with versions), all within the grant.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Approximate host memory this compiled component holds (bytes).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The compiled code as an artifact `load_artifact` accepts on an engine with the same
    /// compatibility hash: what the store keeps so other runners (and restarts) skip the
    /// compile. A copy of the code (as large as `size`, roughly): made on demand, not kept.
    pub fn artifact(&self) -> anyhow::Result<Vec<u8>> {
        self.component.serialize().map_err(anyhow::Error::from)
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("digest", &self.digest)
            .field("imports", &self.imports)
            .finish_non_exhaustive()
    }
}

/// The interfaces a job may import: package, accepted version prefix, interfaces. Kept equal
/// to what `host::linker` links. Listing interfaces (not whole packages) keeps newer WASI
/// additions out until someone decides to grant them.
const GRANTED: &[(&str, &str, &[&str])] = &[
    ("wasi:io", "0.2.", &["error", "poll", "streams"]),
    (
        "wasi:cli",
        "0.2.",
        &[
            "environment",
            "exit",
            "stdin",
            "stdout",
            "stderr",
            "terminal-input",
            "terminal-output",
            "terminal-stdin",
            "terminal-stdout",
            "terminal-stderr",
        ],
    ),
    ("wasi:clocks", "0.2.", &["monotonic-clock", "wall-clock"]),
    (
        "wasi:random",
        "0.2.",
        &["random", "insecure", "insecure-seed"],
    ),
    // Outbound requests only; each is checked against the job's grant (`outbound`).
    ("wasi:http", "0.2.", &["types", "outgoing-handler"]),
    ("sandfire:job", "0.1.", &["host", "types", "config"]),
    // Deny-only, for Python and JavaScript components, whose runtimes import them whether or
    // not the job uses them: no directory is preopened, and every socket operation and name
    // lookup is refused (`host::link_denied_files_and_sockets`).
    ("wasi:filesystem", "0.2.", &["types", "preopens"]),
    (
        "wasi:sockets",
        "0.2.",
        &[
            "network",
            "instance-network",
            "tcp",
            "tcp-create-socket",
            "udp",
            "udp-create-socket",
            "ip-name-lookup",
        ],
    ),
];

/// Whether a component may import `name` (e.g. `wasi:cli/stdout@0.2.3`).
pub(crate) fn allowed_import(name: &str) -> bool {
    let Some((path, version)) = name.split_once('@') else {
        return false;
    };
    let Some((package, interface)) = path.split_once('/') else {
        return false;
    };
    GRANTED.iter().any(|(granted, prefix, interfaces)| {
        *granted == package && version.starts_with(prefix) && interfaces.contains(&interface)
    })
}

/// Lowercase hex SHA-256, the component's address.
pub(crate) fn digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// What one upload may ask the compiler to do. Cranelift's time and memory grow with the
/// number of functions and, faster than linearly, with the size and locals of one function, so
/// these are checked before compiling (a cheap linear pass) to refuse compile bombs early.
#[derive(Debug, Clone, Copy)]
pub struct CompileCaps {
    /// Function bodies over all core modules of the component.
    pub max_functions: usize,
    /// Bytes of one function body.
    pub max_function_bytes: usize,
    /// Locals declared by one function.
    pub max_function_locals: u64,
    /// Core modules in the component.
    pub max_modules: usize,
    /// The sum of the declared minimum sizes of the component's memories may not exceed
    /// this (bytes): such a component could never be instantiated.
    pub max_memory_bytes: u64,
}

impl Default for CompileCaps {
    fn default() -> Self {
        CompileCaps {
            max_functions: 100_000,
            max_function_bytes: 1024 * 1024,
            max_function_locals: 50_000,
            max_modules: 32,
            max_memory_bytes: 256 * 1024 * 1024,
        }
    }
}

/// The checks before compiling: header, validation against the proposals this runner enables
/// (naming a disabled proposal the component needs), and `caps`. Linear in the size.
pub(crate) fn precheck(bytes: &[u8], caps: &CompileCaps) -> Result<(), ComponentError> {
    check_header(bytes)?;
    check_proposals(bytes)?;
    check_caps(bytes, caps)
}

fn validates(bytes: &[u8], features: wasmparser::WasmFeatures) -> bool {
    Validator::new_with_features(features)
        .validate_all(bytes)
        .is_ok()
}

fn check_proposals(bytes: &[u8]) -> Result<(), ComponentError> {
    let allowed = allowed_features();
    let Err(error) = Validator::new_with_features(allowed).validate_all(bytes) else {
        return Ok(());
    };
    // Invalid either way, or invalid only without some disabled proposals: name each one it
    // cannot do without (with every other disabled proposal on, it still fails without it).
    let everything = allowed.union(disabled_features());
    if validates(bytes, everything) {
        let needed: Vec<String> = DISABLED_PROPOSALS
            .iter()
            .filter(|(_, flags)| !validates(bytes, everything.difference(*flags)))
            .map(|(name, _)| (*name).to_owned())
            .collect();
        if !needed.is_empty() {
            return Err(ComponentError::UnsupportedProposal(needed));
        }
    }
    Err(ComponentError::Invalid(error.to_string()))
}

fn check_caps(bytes: &[u8], caps: &CompileCaps) -> Result<(), ComponentError> {
    let invalid = |e: wasmparser::BinaryReaderError| ComponentError::Invalid(e.to_string());
    let too = |what: String| Err(ComponentError::TooComplex(what));
    let (mut functions, mut modules, mut memory) = (0usize, 0usize, 0u64);
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::ModuleSection { .. } => {
                modules += 1;
                if modules > caps.max_modules {
                    return too(format!("more than {} core modules", caps.max_modules));
                }
            }
            Payload::CodeSectionEntry(body) => {
                functions += 1;
                if functions > caps.max_functions {
                    return too(format!("more than {} functions", caps.max_functions));
                }
                let size = body.range().len();
                if size > caps.max_function_bytes {
                    return too(format!(
                        "a function body of {size} bytes (at most {} bytes each)",
                        caps.max_function_bytes
                    ));
                }
                let mut locals = 0u64;
                for local in body.get_locals_reader().map_err(invalid)? {
                    locals += u64::from(local.map_err(invalid)?.0);
                }
                if locals > caps.max_function_locals {
                    return too(format!(
                        "a function with {locals} locals (at most {} each)",
                        caps.max_function_locals
                    ));
                }
            }
            Payload::MemorySection(reader) => {
                for ty in reader {
                    let pages = ty.map_err(invalid)?.initial;
                    memory = memory.saturating_add(pages.saturating_mul(64 * 1024));
                }
                if memory > caps.max_memory_bytes {
                    return too(format!(
                        "its memories' minimum sizes add up to {memory} bytes, more than the \
                         {} bytes any run may use",
                        caps.max_memory_bytes
                    ));
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let initial = table.map_err(invalid)?.ty.initial;
                    if initial > MAX_TABLE_ELEMENTS as u64 {
                        return too(format!(
                            "a table with a minimum of {initial} elements (at most \
                             {MAX_TABLE_ELEMENTS})"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks and compiles `bytes`. CPU-heavy (tens of milliseconds to tens of seconds for a
/// Python or JavaScript component): call it on a blocking thread.
pub(crate) fn compile(
    engine: &Engine,
    linker: &Linker<HostState>,
    digest: String,
    bytes: &[u8],
    caps: &CompileCaps,
) -> Result<Prepared, ComponentError> {
    precheck(bytes, caps)?;
    let component =
        Component::new(engine, bytes).map_err(|e| ComponentError::Invalid(format!("{e:#}")))?;
    prepare(engine, linker, digest, component, bytes.len())
}

/// Loads an artifact that `Prepared::artifact` produced on an engine with the same
/// compatibility hash (`artifact::engine_hash`), then runs the same import and world checks as
/// `compile`. Milliseconds, not seconds: no code generation. `Err` means the artifact cannot be
/// used here (e.g. another wasmtime version or settings); the caller compiles instead.
pub(crate) fn load_artifact(
    engine: &Engine,
    linker: &Linker<HostState>,
    digest: String,
    artifact: &[u8],
) -> Result<Prepared, ComponentError> {
    // SAFETY: `Component::deserialize` trusts its input to be machine code and metadata that
    // wasmtime itself produced for a compatible engine: crafted bytes could run anything. This
    // is sound here because the only bytes that reach it are artifacts a Sandfire runner
    // produced with `Component::serialize` from a component it compiled itself (at upload, or
    // on a cache miss), stored in its own database table (`compiled_components`) and fetched
    // by tenant, component digest and this engine's compatibility hash. Tenants cannot write
    // that table, and no API accepts precompiled bytes from them. wasmtime still refuses an
    // artifact from another version or configuration (an `Err`, handled by compiling).
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, artifact) }
        .map_err(|e| ComponentError::Invalid(format!("{e:#}")))?;
    prepare(engine, linker, digest, component, 0)
}

/// The checks after compiling (import allow-list, world) and pre-instantiation.
fn prepare(
    engine: &Engine,
    linker: &Linker<HostState>,
    digest: String,
    component: Component,
    source_bytes: usize,
) -> Result<Prepared, ComponentError> {
    let imports: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let disallowed: Vec<String> = imports
        .iter()
        .filter(|name| !allowed_import(name))
        .cloned()
        .collect();
    if !disallowed.is_empty() {
        return Err(ComponentError::DisallowedImports(disallowed));
    }
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| ComponentError::WrongWorld(format!("{e:#}")))?;
    let pre = JobPre::new(pre).map_err(|e| ComponentError::WrongWorld(format!("{e:#}")))?;
    // What the cache charges for this entry: the compiled code and metadata wasmtime keeps.
    let image = component.image_range();
    let size = image.end.addr().saturating_sub(image.start.addr()) + source_bytes;
    Ok(Prepared {
        digest,
        imports,
        pre,
        size,
        component,
    })
}

/// Tells a component from a core module or garbage before wasmtime sees it, for a precise
/// error: the preamble is `\0asm`, a u16 version and a u16 layer (0 = core module,
/// 1 = component).
fn check_header(bytes: &[u8]) -> Result<(), ComponentError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(ComponentError::NotWasm);
    }
    match bytes.get(6..8) {
        Some([0, 0]) => Err(ComponentError::CoreModule),
        Some([1, 0]) => Ok(()),
        _ => Err(ComponentError::Invalid(
            "the WebAssembly preamble is truncated or has an unknown layer".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_io_cli_clocks_random_http_and_our_host_in_any_compatible_version() {
        for name in [
            "wasi:filesystem/types@0.2.9",
            "wasi:filesystem/preopens@0.2.12",
            "wasi:sockets/tcp@0.2.9",
            "wasi:sockets/ip-name-lookup@0.2.9",
            "sandfire:job/config@0.1.1",
            "wasi:io/streams@0.2.0",
            "wasi:io/error@0.2.6",
            "wasi:cli/stdout@0.2.3",
            "wasi:cli/environment@0.2.12",
            "wasi:clocks/monotonic-clock@0.2.0",
            "wasi:random/random@0.2.4",
            "sandfire:job/host@0.1.0",
            "sandfire:job/types@0.1.7",
            "sandfire:job/config@0.1.1",
            "wasi:http/outgoing-handler@0.2.0",
            "wasi:http/types@0.2.12",
        ] {
            assert!(allowed_import(name), "{name} should be granted");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for name in [
            "wasi:filesystem/types@0.3.0",
            "wasi:sockets/tcp@0.3.0",
            "wasi:http/incoming-handler@0.2.0",
            "wasi:http/handler@0.3.0",
            "wasi:io/streams@0.3.0",
            "wasi:io/streams",
            "wasi:clocks/timezone@0.2.0",
            "sandfire:job/host@0.2.0",
            "sandfire:job/secrets@0.1.0",
            "acme:evil/host@0.1.0",
            "log",
        ] {
            assert!(!allowed_import(name), "{name} should be refused");
        }
    }

    #[test]
    fn the_header_tells_garbage_core_modules_and_components_apart() {
        assert_eq!(check_header(b"hello world"), Err(ComponentError::NotWasm));
        assert_eq!(check_header(b""), Err(ComponentError::NotWasm));
        assert_eq!(
            check_header(b"\0asm\x01\0\0\0"),
            Err(ComponentError::CoreModule)
        );
        assert!(matches!(
            check_header(b"\0asm\x0d\0"),
            Err(ComponentError::Invalid(_))
        ));
        assert_eq!(check_header(b"\0asm\x0d\0\x01\0"), Ok(()));
    }

    #[test]
    fn messages_name_the_problem_and_the_fix() {
        let message = ComponentError::DisallowedImports(vec![
            "wasi:sockets/tcp@0.2.0".to_owned(),
            "wasi:filesystem/types@0.2.0".to_owned(),
        ])
        .to_string();
        assert!(message.contains("wasi:sockets/tcp@0.2.0, wasi:filesystem/types@0.2.0"));
        assert!(
            ComponentError::CoreModule
                .to_string()
                .contains("wasm32-wasip2")
        );
    }
}
