//! Sleeps on the WASI monotonic clock for an hour, far past any timeout: the runner's wall-clock
//! deadline must stop it even though it burns no fuel while blocked.

use std::time::Duration;

use sandfire_guest::{JobError, info, job};

#[job]
fn sleep(_input: ()) -> Result<(), JobError> {
    info!("sleeping for an hour");
    std::thread::sleep(Duration::from_secs(3600));
    Ok(())
}
