//! The in-memory cache of prepared components, keyed by tenant and digest, bounded by bytes.
//!
//! - An entry is admitted only after a successful compile: bytes that fail to compile never
//!   take room, so garbage uploads cannot push anything out.
//! - The key includes the tenant: one tenant's upload never makes another tenant's identical
//!   bytes fast (no timing oracle), and never shares a compiled artifact across tenants.
//! - The byte budget is partitioned: one tenant holds at most `tenant_bytes`; when the whole
//!   cache is full, the tenant holding the most bytes loses its least recently used entry
//!   first. So a tenant at or under its fair share (budget ÷ tenants cached) is never evicted
//!   by another tenant's uploads or runs.
//! - Concurrent preparations of one key compile once (`inflight`), the others wait for it.
//!
//! It never holds its lock across an await or a compile: the lock only guards the maps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::OnceCell;

use super::component::Prepared;

/// The tenant a compiled component belongs to (the store's tenant id).
pub type TenantId = i64;

pub(crate) type Key = (TenantId, String);

/// A compile in progress, shared by whoever asks for the same key meanwhile.
pub(crate) type Slot = Arc<OnceCell<Arc<Prepared>>>;

pub(crate) struct Cache {
    budget: usize,
    tenant_budget: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    entries: HashMap<Key, Entry>,
    /// Bytes held per tenant.
    tenants: HashMap<TenantId, usize>,
    total: usize,
    /// Logical clock for recency: bumped on every hit and admission.
    clock: u64,
    inflight: HashMap<Key, Slot>,
}

struct Entry {
    prepared: Arc<Prepared>,
    size: usize,
    last_used: u64,
}

/// What the cache holds (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
}

impl Cache {
    pub fn new(budget: usize, tenant_budget: usize) -> Self {
        Cache {
            budget,
            tenant_budget: tenant_budget.min(budget),
            inner: Mutex::default(),
        }
    }

    /// The cached component for `key`, marked most recently used.
    pub fn get(&self, key: &Key) -> Option<Arc<Prepared>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.entries.get_mut(key)?;
        entry.last_used = now;
        Some(entry.prepared.clone())
    }

    /// The slot of the compile in progress for `key` (a new one if none is).
    pub fn inflight(&self, key: &Key) -> Slot {
        self.lock().inflight.entry(key.clone()).or_default().clone()
    }

    /// Ends the compile in progress for `key` (whatever its result), admitting `prepared` if
    /// it succeeded.
    pub fn finish(&self, key: &Key, slot: &Slot, prepared: Option<&Arc<Prepared>>) {
        let mut inner = self.lock();
        if inner
            .inflight
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            inner.inflight.remove(key);
        }
        if let Some(prepared) = prepared {
            self.admit(&mut inner, key, prepared.clone());
        }
    }

    fn admit(&self, inner: &mut CacheInner, key: &Key, prepared: Arc<Prepared>) {
        if inner.entries.contains_key(key) {
            return;
        }
        let size = prepared.size().max(1);
        if size > self.tenant_budget {
            return;
        }
        let tenant = key.0;
        // First within the tenant's own partition...
        while inner.tenants.get(&tenant).copied().unwrap_or(0) + size > self.tenant_budget {
            if !inner.evict_lru_of(tenant) {
                return;
            }
        }
        // ...then from whoever holds the most.
        while inner.total + size > self.budget {
            let Some(largest) = inner
                .tenants
                .iter()
                .max_by_key(|(id, bytes)| (**bytes, **id == tenant))
                .map(|(id, _)| *id)
            else {
                return;
            };
            if !inner.evict_lru_of(largest) {
                return;
            }
        }
        inner.clock += 1;
        let last_used = inner.clock;
        inner.entries.insert(
            key.clone(),
            Entry {
                prepared,
                size,
                last_used,
            },
        );
        *inner.tenants.entry(tenant).or_default() += size;
        inner.total += size;
    }

    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            entries: inner.entries.len(),
            bytes: inner.total,
        }
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.lock().entries.contains_key(key)
    }

    fn lock(&self) -> MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CacheInner {
    /// Evicts the least recently used entry of `tenant`; false if it has none.
    fn evict_lru_of(&mut self, tenant: TenantId) -> bool {
        let oldest = self
            .entries
            .iter()
            .filter(|(key, _)| key.0 == tenant)
            .min_by_key(|(_, entry)| entry.last_used)
            .map(|(key, _)| key.clone());
        let Some(key) = oldest else {
            self.tenants.remove(&tenant);
            return false;
        };
        let entry = self.entries.remove(&key).expect("just found");
        self.total -= entry.size;
        let held = self.tenants.entry(tenant).or_default();
        *held -= entry.size;
        if *held == 0 {
            self.tenants.remove(&tenant);
        }
        true
    }
}
