//! A small bounded least-recently-used map from exact text to its embedding.
//!
//! Invariants: never holds more than `capacity` entries (capacity 0 disables caching);
//! `get` refreshes recency; inserting into a full cache evicts the least recently used entry.
//! `entries` and `order` always describe the same set of keys (each key has exactly one
//! recency stamp), so all operations are O(log n).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A cached embedding, shared with every caller that asked for the same text.
pub type SharedEmbedding = Arc<Vec<f32>>;

/// Bounded LRU cache keyed by the exact input text.
#[derive(Debug)]
pub struct LruCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<Arc<str>, (SharedEmbedding, u64)>,
    order: BTreeMap<u64, Arc<str>>,
}

impl LruCache {
    /// An empty cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tick: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    /// Number of cached texts.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The embedding for `text`, marking it most recently used.
    pub fn get(&mut self, text: &str) -> Option<SharedEmbedding> {
        let stamp = self.next_tick();
        let (key, value) = {
            let (key, (value, old)) = self.entries.get_key_value(text)?;
            self.order.remove(old);
            (key.clone(), value.clone())
        };
        self.order.insert(stamp, key.clone());
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.1 = stamp;
        }
        Some(value)
    }

    /// Stores `value` for `text` (replacing any previous value), evicting the least recently
    /// used entry when full.
    pub fn insert(&mut self, text: &str, value: SharedEmbedding) {
        if self.capacity == 0 {
            return;
        }
        let stamp = self.next_tick();
        let key: Arc<str> = Arc::from(text);
        if let Some((_, old)) = self.entries.insert(key.clone(), (value, stamp)) {
            self.order.remove(&old);
        }
        self.order.insert(stamp, key);
        while self.entries.len() > self.capacity {
            match self.order.pop_first() {
                Some((_, oldest)) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick = self.tick.wrapping_add(1);
        self.tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: f32) -> SharedEmbedding {
        Arc::new(vec![x])
    }

    #[test]
    fn evicts_least_recently_used() {
        let mut c = LruCache::new(2);
        c.insert("a", v(1.0));
        c.insert("b", v(2.0));
        assert_eq!(c.get("a").unwrap()[0], 1.0); // a is now newer than b
        c.insert("c", v(3.0));
        assert_eq!(c.len(), 2);
        assert!(c.get("b").is_none());
        assert_eq!(c.get("a").unwrap()[0], 1.0);
        assert_eq!(c.get("c").unwrap()[0], 3.0);
    }

    #[test]
    fn replacing_keeps_size_and_updates_value() {
        let mut c = LruCache::new(2);
        c.insert("a", v(1.0));
        c.insert("a", v(5.0));
        assert_eq!(c.len(), 1);
        assert_eq!(c.order.len(), 1);
        assert_eq!(c.get("a").unwrap()[0], 5.0);
    }

    #[test]
    fn zero_capacity_disables() {
        let mut c = LruCache::new(0);
        c.insert("a", v(1.0));
        assert!(c.is_empty());
        assert!(c.get("a").is_none());
    }

    #[test]
    fn stays_bounded_under_churn() {
        let mut c = LruCache::new(100);
        for i in 0..1000 {
            c.insert(&i.to_string(), v(i as f32));
            if i % 3 == 0 {
                c.get("0");
            }
        }
        assert_eq!(c.len(), 100);
        assert_eq!(c.order.len(), 100);
        assert!(c.get("0").is_some(), "frequently used entry survives");
        assert!(c.get("1").is_none());
        assert_eq!(c.get("999").unwrap()[0], 999.0);
    }
}
