//! Allocates memory without bound: the runner's memory limit must stop it.

use sandfire_guest::{JobError, info, job};

const MIB: usize = 1024 * 1024;

#[job]
fn hog(_input: ()) -> Result<(), JobError> {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        // `vec![1; ..]` writes every byte, so the memory is really used, not just reserved.
        held.push(std::hint::black_box(vec![1u8; MIB]));
        if held.len().is_multiple_of(16) {
            info!(mib = held.len(); "holding {} MiB", held.len());
        }
    }
}
