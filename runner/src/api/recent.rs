//! Records the API read in the last second (API key grants), so a client's stream of requests
//! costs one lookup a second instead of one per request. Its user says how a change reaches
//! it (`key_cache`: forgotten on every runner when an admin changes something).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a record is used without reading it again.
pub const TTL: Duration = Duration::from_secs(1);

/// Most records remembered; past it the cache starts again empty (a flood of distinct keys
/// costs lookups, never memory).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct Recent<K, V> {
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    /// Bumped by every forget: a read that began before it must not store its answer.
    generation: u64,
    entries: HashMap<K, (Instant, V)>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Recent {
            inner: Mutex::new(Inner {
                generation: 0,
                entries: HashMap::new(),
            }),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // Plain inserts and removals: a panic elsewhere cannot leave the map inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The record under `key`, if it was read less than the TTL ago; else the generation to
    /// hand to [`Recent::put`] with the database's answer.
    pub fn get<Q>(&self, key: &Q) -> Result<V, u64>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let inner = self.lock();
        match inner.entries.get(key) {
            Some((at, value)) if at.elapsed() < TTL => Ok(value.clone()),
            _ => Err(inner.generation),
        }
    }

    /// Remembers a record read from the database, unless something was forgotten since the
    /// read began (`generation` from [`Recent::get`]).
    pub fn put(&self, key: K, value: &V, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.clear();
        }
        inner.entries.insert(key, (Instant::now(), value.clone()));
    }

    /// Forgets one record.
    pub fn forget<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.remove(key);
    }

    /// Forgets every record.
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_used_until_forgotten() {
        let cache: Recent<String, i32> = Recent::default();
        let generation = cache.get("a").expect_err("nothing yet");
        cache.put("a".into(), &1, generation);
        assert_eq!(cache.get("a"), Ok(1));
        cache.forget("a");
        assert!(cache.get("a").is_err());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache: Recent<usize, usize> = Recent::default();
        for i in 0..MAX_ENTRIES + 10 {
            let g = cache.get(&i).unwrap_err();
            cache.put(i, &i, g);
        }
        assert!(cache.lock().entries.len() <= MAX_ENTRIES);
    }
}
