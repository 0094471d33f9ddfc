//! Allocates memory without bound: the runner's memory limit must stop it.
//!
//! With input `{"residue": true}` it checks instead that it starts from a clean memory: it
//! counts the bytes that are not zero in a 2 MiB static buffer and in 8 MiB of freshly grown
//! memory, then fills both with a pattern and returns the counts
//! (`{"dirty_static": 0, "dirty_grown": 0}` when nothing of an earlier run was left behind).
//! The runner reuses pooled memory between runs, so a second run in the same slot would see
//! the first one's pattern if the slot were not reset.

// Reading memory the allocator does not manage takes raw pointers: this test job only.
#![allow(unsafe_code)]

use sandfire_guest::{JobError, info, job};
use serde::{Deserialize, Serialize};

const MIB: usize = 1024 * 1024;
const STATIC_BYTES: usize = 2 * MIB;
const GROWN_PAGES: usize = 128;
const WASM_PAGE: usize = 64 * 1024;
const PATTERN: u8 = 0xAB;

static mut STATIC: [u8; STATIC_BYTES] = [0; STATIC_BYTES];

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Input {
    residue: bool,
}

#[derive(Serialize)]
struct Residue {
    dirty_static: usize,
    dirty_grown: usize,
}

#[job]
fn hog(input: Option<Input>) -> Result<Option<Residue>, JobError> {
    if input.unwrap_or_default().residue {
        return residue().map(Some);
    }
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        // `vec![1; ..]` writes every byte, so the memory is really used, not just reserved.
        held.push(std::hint::black_box(vec![1u8; MIB]));
        if held.len().is_multiple_of(16) {
            info!(mib = held.len(); "holding {} MiB", held.len());
        }
    }
}

/// Counts the bytes of `len` at `start` that are not zero, then fills them with the pattern.
///
/// # Safety
/// `start..start + len` must be memory this job owns and nothing else uses.
unsafe fn count_and_dirty(start: *mut u8, len: usize) -> usize {
    let mut dirty = 0;
    for i in 0..len {
        // SAFETY: in bounds by the caller's promise; volatile so neither pass is elided.
        unsafe {
            let p = start.add(i);
            if p.read_volatile() != 0 {
                dirty += 1;
            }
            p.write_volatile(PATTERN);
        }
    }
    dirty
}

#[cfg(target_arch = "wasm32")]
fn residue() -> Result<Residue, JobError> {
    // SAFETY: the static is only touched here, by this single-threaded job.
    let dirty_static = unsafe { count_and_dirty((&raw mut STATIC).cast::<u8>(), STATIC_BYTES) };
    let before = core::arch::wasm32::memory_grow::<0>(GROWN_PAGES);
    if before == usize::MAX {
        return Err(JobError::fail("could not grow memory by 8 MiB"));
    }
    // SAFETY: the pages just grown belong to no allocation (the allocator grows past them).
    let dirty_grown =
        unsafe { count_and_dirty((before * WASM_PAGE) as *mut u8, GROWN_PAGES * WASM_PAGE) };
    Ok(Residue {
        dirty_static,
        dirty_grown,
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn residue() -> Result<Residue, JobError> {
    Err(JobError::fail("the residue check runs only as WebAssembly"))
}
