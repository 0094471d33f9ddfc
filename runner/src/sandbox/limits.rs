//! The per-attempt `ResourceLimiter`: caps the sum of a store's linear memories at the
//! attempt's memory limit, remembers that the cap was hit (so the trap that usually follows is
//! reported as `memory_limit`, not `panic`) and tracks peak memory for the attempt record.
//!
//! It refuses growth (`Ok(false)`, so `memory.grow` returns -1 to the guest) rather than
//! trapping: a guest that handles allocation failure may carry on. It must never allow more
//! than the limit, whatever the guest's memory declarations say.

use wasmtime::ResourceLimiter;

/// Counts that bound what one component instance may create. Generous for any real job (a
/// Rust wasip2 component has a handful of core instances, one memory and a few tables) and
/// small enough that a hostile component cannot exhaust the pooling allocator's slots.
pub(crate) const MAX_CORE_INSTANCES: usize = 32;
pub(crate) const MAX_MEMORIES: usize = 4;
pub(crate) const MAX_TABLES: usize = 16;
/// Table elements per table (function references): guest-controlled resource exhaustion.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 100_000;

#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: u64,
    /// Sum of the current sizes of the store's memories.
    total: u64,
    peak: u64,
    /// Growth allowed by `memory_growing` and not yet known to have succeeded: undone when
    /// wasmtime reports the growth failed after all.
    pending: u64,
    /// `peak` before the pending growth.
    peak_before_pending: u64,
    hit: bool,
}

impl MemoryLimiter {
    pub fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit,
            total: 0,
            peak: 0,
            pending: 0,
            peak_before_pending: 0,
            hit: false,
        }
    }

    /// True once a memory growth or creation was refused because of the limit.
    pub fn hit(&self) -> bool {
        self.hit
    }

    pub fn peak_bytes(&self) -> u64 {
        self.peak
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Only the latest allowed growth may ever be undone: forget any earlier one first,
        // so a failure reported for this call can never subtract a stale amount.
        self.pending = 0;
        self.peak_before_pending = self.peak;
        let growth = (desired as u64).saturating_sub(current as u64);
        let total = self.total.saturating_add(growth);
        if total > self.limit {
            self.hit = true;
            return Ok(false);
        }
        self.total = total;
        self.pending = growth;
        self.peak_before_pending = self.peak;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The pool's slot size is at least the attempt's limit, so this means the host could
        // not map memory the guest was entitled to: still reported as the memory limit, the
        // closest thing the guest can act on.
        self.total = self.total.saturating_sub(self.pending);
        self.pending = 0;
        self.peak = self.peak_before_pending;
        self.hit = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 64 * 1024;

    #[test]
    fn refuses_growth_past_the_sum_of_memories_and_records_the_hit() {
        let mut limiter = MemoryLimiter::new(4 * PAGE as u64);
        assert!(limiter.memory_growing(0, 2 * PAGE, None).unwrap());
        assert!(limiter.memory_growing(0, PAGE, None).unwrap());
        assert!(!limiter.hit());
        // Growing the first memory by two more pages would make five in total.
        assert!(!limiter.memory_growing(2 * PAGE, 4 * PAGE, None).unwrap());
        assert!(limiter.hit());
        assert_eq!(limiter.peak_bytes(), 3 * PAGE as u64);
        assert!(limiter.memory_growing(2 * PAGE, 3 * PAGE, None).unwrap());
        assert_eq!(limiter.peak_bytes(), 4 * PAGE as u64);
    }

    #[test]
    fn a_failed_growth_is_not_counted() {
        let mut limiter = MemoryLimiter::new(10 * PAGE as u64);
        assert!(limiter.memory_growing(0, PAGE, None).unwrap());
        assert!(limiter.memory_growing(PAGE, 9 * PAGE, None).unwrap());
        limiter
            .memory_grow_failed(wasmtime::format_err!("mmap failed"))
            .unwrap();
        assert!(limiter.hit());
        assert_eq!(limiter.peak_bytes(), PAGE as u64);
        assert!(limiter.memory_growing(PAGE, 2 * PAGE, None).unwrap());
    }

    #[test]
    fn a_failure_after_a_refusal_undoes_nothing_stale() {
        let mut limiter = MemoryLimiter::new(4 * PAGE as u64);
        assert!(limiter.memory_growing(0, 3 * PAGE, None).unwrap());
        // Refused: nothing is pending any more.
        assert!(!limiter.memory_growing(3 * PAGE, 8 * PAGE, None).unwrap());
        limiter
            .memory_grow_failed(wasmtime::format_err!("spurious"))
            .unwrap();
        // The 3 pages are still counted: one more page fits, two do not.
        assert!(!limiter.memory_growing(0, 2 * PAGE, None).unwrap());
        assert!(limiter.memory_growing(0, PAGE, None).unwrap());
        assert_eq!(limiter.peak_bytes(), 4 * PAGE as u64);
    }
}
