//! Turning tenant bytes into something we can run: the header checks, the compile, the import
//! allow-list and the world check, shared by upload-time validation and run-time preparation.
//!
//! Everything here treats the bytes as hostile. It must never load precompiled artifacts from
//! a tenant (`Component::deserialize`), and never accept a component that imports an interface
//! outside the grant, even one the linker happens to provide.

use std::fmt;

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use super::host::{HostState, JobPre};

/// Why an uploaded component cannot be used. Each maps to HTTP 422, its `Display` as the
/// message: it says what is wrong and how to fix it.
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
         wasi:io, wasi:cli, wasi:clocks and wasi:random (0.2.x) and sandfire:job/host \
         (0.1.x): remove the code that uses the others (files, sockets, HTTP, environment \
         access through other interfaces)",
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
    ("sandfire:job", "0.1.", &["host", "types"]),
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

/// Checks and compiles `bytes`. CPU-heavy (tens of milliseconds or more): call it on a
/// blocking thread.
pub(crate) fn compile(
    engine: &Engine,
    linker: &Linker<HostState>,
    digest: String,
    bytes: &[u8],
) -> Result<Prepared, ComponentError> {
    check_header(bytes)?;
    let component =
        Component::new(engine, bytes).map_err(|e| ComponentError::Invalid(format!("{e:#}")))?;
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
    Ok(Prepared {
        digest,
        imports,
        pre,
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
    fn grants_io_cli_clocks_random_and_our_host_in_any_compatible_version() {
        for name in [
            "wasi:io/streams@0.2.0",
            "wasi:io/error@0.2.6",
            "wasi:cli/stdout@0.2.3",
            "wasi:cli/environment@0.2.12",
            "wasi:clocks/monotonic-clock@0.2.0",
            "wasi:random/random@0.2.4",
            "sandfire:job/host@0.1.0",
            "sandfire:job/types@0.1.7",
        ] {
            assert!(allowed_import(name), "{name} should be granted");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for name in [
            "wasi:filesystem/types@0.2.0",
            "wasi:filesystem/preopens@0.2.0",
            "wasi:sockets/tcp@0.2.0",
            "wasi:http/outgoing-handler@0.2.0",
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
