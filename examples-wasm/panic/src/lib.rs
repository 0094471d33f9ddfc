//! Panics: the runner records the attempt as `panic`, with the message below from stderr.

use sandfire_guest::{JobError, job};

#[job]
fn panic(_input: ()) -> Result<(), JobError> {
    panic!("the panic example job panicked on purpose")
}
