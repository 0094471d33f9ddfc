//! The in-memory cache of prepared components: digest → `Arc<Prepared>`, bounded, least
//! recently used evicted first. Each digest has one `OnceCell`, so concurrent preparations of
//! one component compile it once and the others wait for that result.
//!
//! It never holds its lock across an await or a compile: the lock only guards the map.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::OnceCell;

use super::component::Prepared;

pub(crate) type Slot = Arc<OnceCell<Arc<Prepared>>>;

pub(crate) struct Cache {
    capacity: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    entries: HashMap<String, Entry>,
    /// Logical clock for recency: bumped on every lookup.
    clock: u64,
}

struct Entry {
    slot: Slot,
    last_used: u64,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache {
            capacity: capacity.max(1),
            inner: Mutex::default(),
        }
    }

    /// The slot for `digest`, created empty if absent; marks it most recently used and evicts
    /// the least recently used entry when the cache is over capacity. An evicted slot that is
    /// still being filled finishes for whoever waits on it; it is just no longer shared.
    pub fn slot(&self, digest: &str) -> Slot {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let slot = match inner.entries.get_mut(digest) {
            Some(entry) => {
                entry.last_used = now;
                entry.slot.clone()
            }
            None => {
                let slot = Slot::default();
                inner.entries.insert(
                    digest.to_owned(),
                    Entry {
                        slot: slot.clone(),
                        last_used: now,
                    },
                );
                slot
            }
        };
        while inner.entries.len() > self.capacity {
            let oldest = inner
                .entries
                .iter()
                .filter(|(key, _)| key.as_str() != digest)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(key) => inner.entries.remove(&key),
                None => break,
            };
        }
        slot
    }

    /// Drops an entry whose preparation failed, so failures do not take cache room.
    pub fn forget_if_empty(&self, digest: &str) {
        let mut inner = self.lock();
        if inner
            .entries
            .get(digest)
            .is_some_and(|entry| !entry.slot.initialized())
        {
            inner.entries.remove(digest);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    #[cfg(test)]
    pub fn contains(&self, digest: &str) -> bool {
        self.lock().entries.contains_key(digest)
    }

    fn lock(&self) -> MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_entry() {
        let cache = Cache::new(2);
        cache.slot("a");
        cache.slot("b");
        cache.slot("a");
        cache.slot("c");
        assert_eq!(cache.len(), 2);
        assert!(cache.contains("a"));
        assert!(!cache.contains("b"));
        assert!(cache.contains("c"));
    }

    #[test]
    fn one_slot_per_digest() {
        let cache = Cache::new(4);
        assert!(Arc::ptr_eq(&cache.slot("a"), &cache.slot("a")));
        cache.forget_if_empty("a");
        assert!(!cache.contains("a"));
    }
}
