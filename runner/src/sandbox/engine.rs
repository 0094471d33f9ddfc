//! The wasmtime `Engine`: Cranelift, fuel metering, epoch interruption and a pooling allocator
//! sized from `SandboxConfig`, plus the epoch ticker thread.
//!
//! The ticker holds only a weak reference: it must never keep an engine (and its pool's address
//! space) alive after the last `Sandbox` clone is gone.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use wasmparser::WasmFeatures;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy};

use super::SandboxConfig;
use super::limits::{MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLE_ELEMENTS, MAX_TABLES};

/// Runs whose slots are handed back to the kernel together (see `decommit_batch_size`).
const DECOMMIT_BATCH: usize = 16;
/// Bytes of each pooled table kept resident between runs.
const KEEP_RESIDENT_TABLE: usize = 64 << 10;
/// Bytes of each fiber stack kept resident between runs.
const KEEP_RESIDENT_STACK: usize = 64 << 10;

/// Unmapped bytes after each linear memory. With a reservation far below 4 GiB Cranelift emits
/// bounds checks anyway; the guard lets it fold checks for nearby constant offsets.
const MEMORY_GUARD_BYTES: u64 = 2 * 1024 * 1024;

/// The largest memory a 32-bit wasm memory can have.
const MAX_WASM32_MEMORY: u64 = 4 * 1024 * 1024 * 1024;

const WASM_PAGE: u64 = 64 * 1024;

/// Wasm stack one call of a guest may use (bytes): deeper recursion traps with
/// `StackOverflow`. Guest-controlled: a bound on host stack per running attempt.
pub(crate) const MAX_WASM_STACK: usize = 512 * 1024;
/// Fiber stack of one running attempt: the wasm stack plus room for host functions (WASI,
/// our imports) called from it. Must stay well above `MAX_WASM_STACK`.
pub(crate) const ASYNC_STACK: usize = 2 * 1024 * 1024;

/// WebAssembly proposals the product does not use, each with the name an upload refused for
/// it is told, and the validator flags that make it up. They are switched off explicitly so a
/// dependency enabling more wasmtime features (its default set brings GC, threads, exceptions,
/// stack switching, component-model async) cannot silently widen what tenants can run.
/// Rust's `wasm32-wasip2` output uses none of them (checked by the examples' tests).
pub(crate) const DISABLED_PROPOSALS: &[(&str, WasmFeatures)] = &[
    ("memory64", WasmFeatures::MEMORY64),
    ("function-references", WasmFeatures::FUNCTION_REFERENCES),
    ("gc", WasmFeatures::GC.union(WasmFeatures::GC_TYPES)),
    (
        "threads",
        WasmFeatures::THREADS.union(WasmFeatures::SHARED_EVERYTHING_THREADS),
    ),
    (
        "exceptions",
        WasmFeatures::EXCEPTIONS.union(WasmFeatures::LEGACY_EXCEPTIONS),
    ),
    ("stack-switching", WasmFeatures::STACK_SWITCHING),
    ("tail-call", WasmFeatures::TAIL_CALL),
    ("multi-memory", WasmFeatures::MULTI_MEMORY),
    // Non-deterministic across CPUs; nothing we run needs it.
    ("relaxed-simd", WasmFeatures::RELAXED_SIMD),
    // Would let a memory's page size differ from 64 KiB (see `limits::MemoryLimiter`).
    ("custom-page-sizes", WasmFeatures::CUSTOM_PAGE_SIZES),
    ("wide-arithmetic", WasmFeatures::WIDE_ARITHMETIC),
    ("memory-control", WasmFeatures::MEMORY_CONTROL),
    (
        "component-model-async",
        WasmFeatures::CM_ASYNC
            .union(WasmFeatures::CM_ASYNC_STACKFUL)
            .union(WasmFeatures::CM_MORE_ASYNC_BUILTINS)
            .union(WasmFeatures::CM_THREADING)
            .union(WasmFeatures::CM_ERROR_CONTEXT),
    ),
    (
        "component-model-gc",
        WasmFeatures::CM_GC.union(WasmFeatures::CM_FIXED_LENGTH_LISTS),
    ),
];

/// Every flag of `DISABLED_PROPOSALS`.
pub(crate) fn disabled_features() -> WasmFeatures {
    DISABLED_PROPOSALS
        .iter()
        .fold(WasmFeatures::empty(), |all, (_, flags)| all.union(*flags))
}

/// What an uploaded component may use: WebAssembly 3.0 as wasmtime enables it by default
/// (SIMD, bulk memory, reference types, multi-value, extended-const...) plus the component
/// model, minus `DISABLED_PROPOSALS`. The upload check and the engine use this one set.
pub(crate) fn allowed_features() -> WasmFeatures {
    WasmFeatures::WASM3
        .union(WasmFeatures::COMPONENT_MODEL)
        .difference(disabled_features())
}

/// An engine with the runner's code-generation settings but no instance pool: for the compile
/// probe, which compiles and never instantiates (a pool would reserve address space the
/// probe's limit is meant for).
pub(crate) fn build_unpooled(config: &SandboxConfig) -> anyhow::Result<Engine> {
    let mut wasm = codegen(config)?;
    wasm.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    Engine::new(&wasm)
        .map_err(anyhow::Error::from)
        .context("configuring the wasmtime engine")
}

/// The settings that decide what compiled code looks like (a component compiled by one engine
/// with these settings compiles the same way in another).
fn codegen(config: &SandboxConfig) -> anyhow::Result<Config> {
    let reservation = config.max_memory_bytes.div_ceil(WASM_PAGE) * WASM_PAGE;
    let mut wasm = Config::new();
    wasm.strategy(Strategy::Cranelift)
        .consume_fuel(true)
        .epoch_interruption(true)
        .memory_reservation(reservation)
        .memory_guard_size(MEMORY_GUARD_BYTES)
        // Pooled memories never move, so there is nothing to reserve for growth.
        .memory_reservation_for_growth(0)
        // One compile uses one core: `compile_concurrency` is then the number of cores
        // compiles can take from attempts and the API.
        .parallel_compilation(false)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .wasm_features(disabled_features(), false)
        // Belt and braces: should relaxed SIMD ever be enabled, make it deterministic.
        .relaxed_simd_deterministic(true);
    Ok(wasm)
}

pub(crate) fn build(config: &SandboxConfig) -> anyhow::Result<Engine> {
    ensure!(
        (WASM_PAGE..=MAX_WASM32_MEMORY).contains(&config.max_memory_bytes),
        "max_memory_bytes must be between 64 KiB and 4 GiB, not {}",
        config.max_memory_bytes
    );
    ensure!(
        config.instance_slots > 0,
        "instance_slots must be at least 1"
    );
    ensure!(!config.epoch_tick.is_zero(), "epoch_tick must be positive");

    // Every slot of the pool reserves address space for this much memory, no more: a 4 GiB
    // reservation per slot would buy bounds-check elimination at the price of terabytes of
    // address space for hundreds of memory slots.
    let reservation = config.max_memory_bytes.div_ceil(WASM_PAGE) * WASM_PAGE;
    let slots = config.instance_slots;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(MAX_CORE_INSTANCES as u32))
        .max_core_instances_per_component(MAX_CORE_INSTANCES as u32)
        .total_memories(slots.saturating_mul(MAX_MEMORIES as u32))
        .max_memories_per_component(MAX_MEMORIES as u32)
        .total_tables(slots.saturating_mul(MAX_TABLES as u32))
        .max_tables_per_component(MAX_TABLES as u32)
        .max_tables_per_module(MAX_TABLES as u32)
        .table_elements(MAX_TABLE_ELEMENTS)
        // One fiber stack per running call.
        .total_stacks(slots)
        // A fresh sandbox per run: returning a slot's pages to the kernel and faulting them
        // back in on the next run costs more than zeroing them. Keep the first part of each
        // memory, table and stack resident (zeroed between runs: nothing of one run is seen by
        // the next), and give back only what a run used beyond it.
        .linear_memory_keep_resident(config.keep_resident_bytes)
        // Hand pages back in batches: each hand-back interrupts every core running this
        // process to flush its TLB, so one flush per batch instead of one per run.
        .decommit_batch_size(DECOMMIT_BATCH)
        .table_keep_resident(KEEP_RESIDENT_TABLE)
        .async_stack_keep_resident(KEEP_RESIDENT_STACK)
        .max_memory_size(usize::try_from(reservation).context("max_memory_bytes")?);

    let mut wasm = codegen(config)?;
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm)
        .map_err(anyhow::Error::from)
        .context("configuring the wasmtime engine")
}

/// Hex SHA-256 of `Engine::precompile_compatibility_hash`: equal for engines that can load each
/// other's compiled artifacts (same wasmtime version, target and code-generation settings), so
/// it keys kept artifacts. Hashed with SHA-256 rather than `DefaultHasher`, whose output may
/// change between Rust releases. A stale key costs only a compile: wasmtime checks the
/// artifact's own header again when loading it.
pub(crate) fn compatibility_hash(engine: &Engine) -> String {
    use sha2::Digest as _;
    use std::hash::{Hash as _, Hasher};

    struct Sha(sha2::Sha256);
    impl Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        // Never called by `Hash` impls; only the SHA-256 digest below is read.
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut hasher = Sha(sha2::Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(hasher.0.finalize())
}

/// Advances the engine's epoch every `tick` until the engine is dropped; the thread then ends
/// on its own (the handle is only needed by tests).
pub(crate) fn start_epoch_ticker(
    engine: &Engine,
    tick: Duration,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("sandfire-epoch".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .context("starting the epoch ticker thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ticker_stops_once_the_engine_is_dropped() {
        let engine = build(&SandboxConfig {
            max_memory_bytes: 1024 * 1024,
            instance_slots: 1,
            ..SandboxConfig::default()
        })
        .unwrap();
        let ticker = start_epoch_ticker(&engine, Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(!ticker.is_finished());
        drop(engine);
        std::thread::sleep(Duration::from_millis(50));
        assert!(ticker.is_finished(), "the ticker outlived its engine");
        ticker.join().unwrap();
    }

    #[test]
    fn refuses_nonsense_settings() {
        for config in [
            SandboxConfig {
                max_memory_bytes: 1,
                ..SandboxConfig::default()
            },
            SandboxConfig {
                instance_slots: 0,
                ..SandboxConfig::default()
            },
            SandboxConfig {
                epoch_tick: Duration::ZERO,
                ..SandboxConfig::default()
            },
        ] {
            assert!(build(&config).is_err(), "{config:?}");
        }
    }
}
