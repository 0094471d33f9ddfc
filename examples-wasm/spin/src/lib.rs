//! Never finishes and never checks for cancellation: the runner must stop it (fuel or timeout).

use sandfire_guest::{JobError, info, job};

#[job]
fn spin(_input: ()) -> Result<(), JobError> {
    info!("spinning until the runner stops me");
    let mut counter: u64 = 0;
    loop {
        counter = counter.wrapping_add(1);
        // Keeps the optimiser from proving the loop useless and removing it.
        std::hint::black_box(counter);
    }
}
