//! A small in-process cache with a time to live, for hot read paths (environments, verified
//! bearer tokens). Entries live at most a couple of seconds, so a change made through another
//! process is seen quickly without a database round trip on every request; this process's own
//! writes invalidate at once.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub struct TtlCache<K, V> {
    ttl: Duration,
    max_entries: usize,
    map: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        TtlCache {
            ttl,
            max_entries,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, k: &K) -> Option<V> {
        let map = self.map.lock();
        map.get(k)
            .filter(|(at, _)| *at > Instant::now())
            .map(|(_, v)| v.clone())
    }

    /// Caches `v` until the TTL, or `until` if that is sooner.
    pub fn put(&self, k: K, v: V, until: Option<Instant>) {
        let now = Instant::now();
        let expiry = until.map_or(now + self.ttl, |u| u.min(now + self.ttl));
        let mut map = self.map.lock();
        if map.len() >= self.max_entries {
            map.retain(|_, (at, _)| *at > now);
            if map.len() >= self.max_entries {
                map.clear();
            }
        }
        map.insert(k, (expiry, v));
    }

    pub fn clear(&self) {
        self.map.lock().clear();
    }

    pub fn remove(&self, k: &K) {
        self.map.lock().remove(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_bounds() {
        let c = TtlCache::new(Duration::from_millis(30), 2);
        c.put("a", 1, None);
        assert_eq!(c.get(&"a"), Some(1));
        c.put("b", 2, Some(Instant::now()));
        assert_eq!(c.get(&"b"), None, "an earlier deadline wins");
        c.put("c", 3, None);
        assert!(c.map.lock().len() <= 2);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get(&"a"), None);
        c.put("d", 4, None);
        c.remove(&"d");
        assert_eq!(c.get(&"d"), None);
    }
}
