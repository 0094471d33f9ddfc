//! The database clock, read locally: attempt start and end times are taken by the runner when
//! they happen (an outcome may wait in the completer's batch before it is written), so they
//! are the runner's clock plus its offset to the database's, measured at start and with every
//! heartbeat (the sample with the shortest round trip wins, so a slow answer never skews it).

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

use crate::store::Store;

#[derive(Debug, Default)]
pub(crate) struct DbClock {
    /// (offset, round trip of the sample it came from)
    offset: Mutex<Option<(TimeDelta, TimeDelta)>>,
}

impl DbClock {
    /// Now, on the database clock (the runner's own until a sample was taken).
    pub fn now(&self) -> DateTime<Utc> {
        let offset = self.lock().map(|(o, _)| o).unwrap_or_default();
        Utc::now() + offset
    }

    /// Takes a sample; keeps it if its round trip was no slower than twice the best so far
    /// (clocks drift, so a fresh fair sample replaces an old fast one).
    pub async fn sync(&self, store: &dyn Store) {
        let before = Utc::now();
        let Ok(db) = store.clock().await else { return };
        let after = Utc::now();
        let rtt = after - before;
        let offset = db - (before + rtt / 2);
        let mut best = self.lock();
        if best
            .is_none_or(|(_, best_rtt)| rtt <= best_rtt * 2 || rtt < TimeDelta::microseconds(500))
        {
            *best = Some((offset, rtt));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(TimeDelta, TimeDelta)>> {
        self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}
