//! The compile probe: an upload is first compiled in a child process (`sandfire
//! compile-probe`) under an address-space limit (`RLIMIT_AS`) and a wall clock that kills it.
//! A component whose compile would need more memory or time than the runner allows is refused
//! without touching the runner's own memory, and a timed-out compile really stops (a compile
//! thread in the runner could not be interrupted). Only when the probe succeeds does the runner
//! compile the bytes itself: the same, deterministic work, now known to fit.
//!
//! The child gets the bytes on stdin and the engine settings that shape code generation on its
//! command line; it writes nothing but an error message and answers with its exit status.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use tokio::io::AsyncWriteExt;
use wasmtime::component::Component;

use super::component::ComponentError;
use super::{SandboxConfig, engine};

/// Where the probe program is and what it may use.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// The `sandfire` executable (it runs `sandfire compile-probe`).
    pub program: PathBuf,
    /// The probe's address-space limit in bytes (`--compile-memory-mb`).
    pub memory_bytes: u64,
}

/// Exit status of a probe whose compile failed on the bytes themselves (message on stderr).
const EXIT_INVALID: i32 = 3;
/// Exit status of a probe that could not start its engine (a runner fault, not the upload's).
const EXIT_SETUP: i32 = 4;
/// Exit status of a probe whose compile ran out of address space with an error instead of an
/// abort (the compiler's own `mmap` refused), message on stderr.
const EXIT_MEMORY: i32 = 5;

/// Compiles `bytes` in a child process; `Ok` when it compiled within the limits.
pub(crate) async fn probe(
    probe: &ProbeConfig,
    config: &SandboxConfig,
    bytes: &[u8],
) -> Result<(), ComponentError> {
    let mut child = tokio::process::Command::new(&probe.program)
        .arg("compile-probe")
        .arg("--memory-bytes")
        .arg(probe.memory_bytes.to_string())
        .arg("--max-memory-bytes")
        .arg(config.max_memory_bytes.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| probe_fault(format!("could not start {}: {e}", probe.program.display())))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = bytes.to_vec();
    let feed = tokio::spawn(async move {
        // A probe that dies early closes its stdin: the write error is not the news.
        let _ = stdin.write_all(&input).await;
    });
    // Dropping the child on timeout kills it (`kill_on_drop`).
    let output = match tokio::time::timeout(config.compile_timeout, child.wait_with_output()).await
    {
        Ok(output) => output.map_err(|e| probe_fault(format!("waiting for it: {e}")))?,
        Err(_) => {
            feed.abort();
            return Err(ComponentError::CompileTimeout(config.compile_timeout));
        }
    };
    let _ = feed.await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    judge(output.status, stderr.trim(), probe.memory_bytes)
}

fn judge(status: ExitStatus, stderr: &str, memory_bytes: u64) -> Result<(), ComponentError> {
    match status.code() {
        Some(0) => Ok(()),
        Some(EXIT_INVALID) => Err(ComponentError::Invalid(stderr.to_owned())),
        Some(EXIT_SETUP) => Err(probe_fault(stderr.to_owned())),
        Some(EXIT_MEMORY) => {
            tracing::warn!(stderr, "the compile probe of an upload ran out of memory");
            Err(ComponentError::CompileMemory(memory_bytes))
        }
        // Killed by a signal (an allocation failure aborts) or any other exit: the compile
        // did not fit in its address space.
        _ => {
            tracing::warn!(%status, stderr, "the compile probe of an upload failed");
            Err(ComponentError::CompileMemory(memory_bytes))
        }
    }
}

fn probe_fault(detail: String) -> ComponentError {
    tracing::error!(detail, "the compile probe could not run");
    ComponentError::ProbeFailed
}

/// The child's side (`sandfire compile-probe`): reads the component from stdin, limits its own
/// address space to `memory_bytes`, compiles with the runner's code-generation settings and
/// returns the exit status for [`judge`].
pub fn run_child(memory_bytes: u64, max_memory_bytes: u64) -> i32 {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("reading the component from stdin: {e}");
        return EXIT_SETUP;
    }
    let limit = rustix::process::Rlimit {
        current: Some(memory_bytes),
        maximum: Some(memory_bytes),
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::As, limit) {
        eprintln!("limiting the address space: {e}");
        return EXIT_SETUP;
    }
    let config = SandboxConfig {
        max_memory_bytes,
        ..SandboxConfig::default()
    };
    let engine = match engine::build_unpooled(&config) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("configuring the engine: {e:#}");
            return EXIT_SETUP;
        }
    };
    match Component::new(&engine, &bytes) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("{e:#}");
            if out_of_memory(&e) {
                EXIT_MEMORY
            } else {
                EXIT_INVALID
            }
        }
    }
}

/// A compile that failed for want of memory, not because of the bytes: under `RLIMIT_AS` an
/// allocation may abort the probe, or a `mmap` of the compiler's own may fail with `ENOMEM`
/// and come back as an error ("mmap failed to allocate ...: Cannot allocate memory"). Which
/// one happens first depends on the allocator and the threads' reservations.
fn out_of_memory(error: &wasmtime::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<rustix::io::Errno>()
            .is_some_and(|e| *e == rustix::io::Errno::NOMEM)
            || cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
                e.kind() == std::io::ErrorKind::OutOfMemory
                    || e.raw_os_error() == Some(rustix::io::Errno::NOMEM.raw_os_error())
            })
            || cause.is::<wasmtime::OutOfMemory>()
    })
}

/// Wall-clock and memory limits of the probe are the upload's; the worker side compiles
/// stored bytes (which passed a probe) without one.
pub(crate) fn applies(upload: bool, probe: Option<&ProbeConfig>) -> Option<&ProbeConfig> {
    probe.filter(|_| upload)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn exit_statuses_mean_what_they_say() {
        let ok = ExitStatus::from_raw(0);
        assert!(judge(ok, "", 1 << 30).is_ok());
        let invalid = ExitStatus::from_raw(EXIT_INVALID << 8);
        assert!(matches!(
            judge(invalid, "bad section", 1 << 30),
            Err(ComponentError::Invalid(m)) if m == "bad section"
        ));
        // SIGABRT, as an allocation failure under RLIMIT_AS ends the probe.
        let aborted = ExitStatus::from_raw(6);
        assert!(matches!(
            judge(aborted, "memory allocation failed", 1 << 30),
            Err(ComponentError::CompileMemory(m)) if m == 1 << 30
        ));
        // A compile whose `mmap` was refused under the limit.
        let refused = ExitStatus::from_raw(EXIT_MEMORY << 8);
        assert!(matches!(
            judge(refused, "mmap failed to allocate 0x65000 bytes", 1 << 30),
            Err(ComponentError::CompileMemory(m)) if m == 1 << 30
        ));
        let setup = ExitStatus::from_raw(EXIT_SETUP << 8);
        assert!(matches!(
            judge(setup, "x", 1),
            Err(ComponentError::ProbeFailed)
        ));
    }

    #[test]
    fn a_refused_mapping_is_told_from_invalid_bytes() {
        let refused = wasmtime::Error::from(rustix::io::Errno::NOMEM)
            .context("mmap failed to allocate 0x65000 bytes")
            .context("Cannot allocate buffer");
        assert!(out_of_memory(&refused));
        let io = wasmtime::Error::from(std::io::Error::from_raw_os_error(
            rustix::io::Errno::NOMEM.raw_os_error(),
        ))
        .context("mapping");
        assert!(out_of_memory(&io));
        let invalid = wasmtime::Error::msg("failed to parse WebAssembly module");
        assert!(!out_of_memory(&invalid));
        let other_errno = wasmtime::Error::from(rustix::io::Errno::INVAL).context("mmap");
        assert!(!out_of_memory(&other_errno));
    }
}
