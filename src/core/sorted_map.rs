//! [`SortedMap`]: an ordered map kept as two sorted vectors (keys, values), for the small maps
//! the router keeps (metric keys, upstreams, reasons, store keys: tens of entries).
//!
//! Why not `BTreeMap`: the Worker ships as wasm, and every `BTreeMap<K, V>` instantiates its
//! whole B-tree (node splits and merges, navigation, the dying-iterator drop) for that pair:
//! ~4–5 KB of code per pair, ~25 pairs, ~116 KB of the Worker's code before wasm-opt (twiggy,
//! README "Performance"). Here the search is generic over the key type alone (the keys are a
//! vector of their own), and the rest is a vector insert or remove; the same iteration order
//! (ascending keys), the same JSON (an object, a later duplicate key replacing an earlier one).
//!
//! Inserting is linear in the map's size, which is what keeps it small: use it for maps of at
//! most a few hundred entries. A map that can grow with traffic (the per-key quota's 50,000
//! keys) stays a `BTreeMap`.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;

/// An ordered map: keys ascending, each once.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SortedMap<K, V> {
    keys: Vec<K>,
    values: Vec<V>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap {
            keys: Vec::new(),
            values: Vec::new(),
        }
    }
}

/// Where `q` is in `keys`: `Ok(index)` when present, `Err(insertion point)` when not. Generic
/// over the key type only, so every map with the same key type shares it.
fn find<K: Borrow<Q>, Q: Ord + ?Sized>(keys: &[K], q: &Q) -> Result<usize, usize> {
    keys.binary_search_by(|k| k.borrow().cmp(q))
}

impl<K, V> SortedMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
    }

    /// Entries in ascending key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        self.keys.iter().zip(self.values.iter())
    }

    /// Entries in ascending key order, the values mutable.
    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        self.keys.iter().zip(self.values.iter_mut())
    }

    pub fn keys(&self) -> std::slice::Iter<'_, K> {
        self.keys.iter()
    }

    pub fn values(&self) -> std::slice::Iter<'_, V> {
        self.values.iter()
    }

    pub fn values_mut(&mut self) -> std::slice::IterMut<'_, V> {
        self.values.iter_mut()
    }

    pub fn into_values(self) -> std::vec::IntoIter<V> {
        self.values.into_iter()
    }

    /// The entry with the largest key.
    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.keys.last().zip(self.values.last())
    }

    /// Keeps the entries for which `f` says yes (in key order).
    pub fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        let mut keep = Vec::with_capacity(self.keys.len());
        for (k, v) in self.keys.iter().zip(self.values.iter_mut()) {
            keep.push(f(k, v));
        }
        let mut flags = keep.iter();
        self.keys.retain(|_| flags.next().copied().unwrap_or(false));
        let mut flags = keep.iter();
        self.values
            .retain(|_| flags.next().copied().unwrap_or(false));
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    pub fn get<Q: Ord + ?Sized>(&self, q: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        find(&self.keys, q).ok().and_then(|i| self.values.get(i))
    }

    pub fn get_mut<Q: Ord + ?Sized>(&mut self, q: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        find(&self.keys, q)
            .ok()
            .and_then(|i| self.values.get_mut(i))
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, q: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        find(&self.keys, q).is_ok()
    }

    /// Sets `k` to `v`; the value it replaces, if any.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        match find(&self.keys, &k) {
            Ok(i) => self
                .values
                .get_mut(i)
                .map(|slot| std::mem::replace(slot, v)),
            Err(i) => {
                self.keys.insert(i, k);
                self.values.insert(i, v);
                None
            }
        }
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, q: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let i = find(&self.keys, q).ok()?;
        self.keys.remove(i);
        Some(self.values.remove(i))
    }

    /// The slot of `k`, to read, fill or change in place.
    pub fn entry(&mut self, k: K) -> Entry<'_, K, V> {
        match find(&self.keys, &k) {
            Ok(i) => Entry::Occupied { map: self, at: i },
            Err(i) => Entry::Vacant {
                map: self,
                at: i,
                key: k,
            },
        }
    }

    /// Moves every entry of `other` into `self` (replacing values of equal keys), leaving
    /// `other` empty.
    pub fn append(&mut self, other: &mut Self) {
        let keys = std::mem::take(&mut other.keys);
        let values = std::mem::take(&mut other.values);
        self.extend(keys.into_iter().zip(values));
    }
}

/// A slot of a [`SortedMap`] (as `btree_map::Entry`).
pub enum Entry<'a, K, V> {
    Occupied {
        map: &'a mut SortedMap<K, V>,
        at: usize,
    },
    Vacant {
        map: &'a mut SortedMap<K, V>,
        at: usize,
        key: K,
    },
}

impl<'a, K, V> Entry<'a, K, V> {
    /// The value, inserting `make()` first when the slot is empty.
    pub fn or_insert_with(self, make: impl FnOnce() -> V) -> &'a mut V {
        let (map, at) = match self {
            Entry::Occupied { map, at } => (map, at),
            Entry::Vacant { map, at, key } => {
                map.keys.insert(at, key);
                map.values.insert(at, make());
                (map, at)
            }
        };
        // `at` is in bounds: an occupied slot's index, or the one just inserted.
        &mut map.values[at]
    }

    pub fn or_insert(self, v: V) -> &'a mut V {
        self.or_insert_with(|| v)
    }

    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    /// Changes the value in place when the slot is filled.
    pub fn and_modify(self, f: impl FnOnce(&mut V)) -> Self {
        match self {
            Entry::Occupied { map, at } => {
                if let Some(v) = map.values.get_mut(at) {
                    f(v);
                }
                Entry::Occupied { map, at }
            }
            vacant => vacant,
        }
    }
}

pub type Iter<'a, K, V> = std::iter::Zip<std::slice::Iter<'a, K>, std::slice::Iter<'a, V>>;
pub type IterMut<'a, K, V> = std::iter::Zip<std::slice::Iter<'a, K>, std::slice::IterMut<'a, V>>;
pub type IntoIter<K, V> = std::iter::Zip<std::vec::IntoIter<K>, std::vec::IntoIter<V>>;

impl<K, V> IntoIterator for SortedMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.keys.into_iter().zip(self.values)
    }
}

impl<'a, K, V> IntoIterator for &'a SortedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, K, V> IntoIterator for &'a mut SortedMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = IterMut<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

/// Inserted one by one: a later duplicate key replaces an earlier one (as `BTreeMap` does).
impl<K: Ord, V> Extend<(K, V)> for SortedMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, items: I) {
        for (k, v) in items {
            self.insert(k, v);
        }
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(items: I) -> Self {
        let mut m = SortedMap::new();
        m.extend(items);
        m
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for SortedMap<K, V> {
    fn from(items: [(K, V); N]) -> Self {
        items.into_iter().collect()
    }
}

/// `map[&key]`: the value; panics when the key is absent, as `BTreeMap`'s index does (tests
/// use it; the router's code reads with [`SortedMap::get`]).
impl<K: Ord + Borrow<Q>, Q: Ord + ?Sized, V> std::ops::Index<&Q> for SortedMap<K, V> {
    type Output = V;
    fn index(&self, q: &Q) -> &V {
        &self.values[find(&self.keys, q).unwrap_or(usize::MAX)]
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SortedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A JSON object, keys in ascending order (as `BTreeMap` writes it).
impl<K: Serialize, V: Serialize> Serialize for SortedMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for SortedMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Ord + Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for MapVisitor<K, V> {
            type Value = SortedMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut m = SortedMap::new();
                while let Some((k, v)) = access.next_entry()? {
                    m.insert(k, v);
                }
                Ok(m)
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The same operations on a `BTreeMap` and a `SortedMap` leave the same entries in the
    /// same order, and return the same values along the way.
    #[test]
    fn behaves_as_a_btreemap() {
        let mut a: BTreeMap<u32, u64> = BTreeMap::new();
        let mut b: SortedMap<u32, u64> = SortedMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..5_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % 97) as u32;
            match x % 7 {
                0 | 1 => assert_eq!(a.insert(k, step), b.insert(k, step)),
                2 => assert_eq!(a.remove(&k), b.remove(&k)),
                3 => {
                    *a.entry(k).or_default() += 1;
                    *b.entry(k).or_default() += 1;
                    continue;
                }
                4 => {
                    a.entry(k).and_modify(|v| *v *= 2).or_insert(7);
                    b.entry(k).and_modify(|v| *v *= 2).or_insert(7);
                    continue;
                }
                5 => {
                    a.retain(|k, v| !(*k as u64 + *v).is_multiple_of(5));
                    b.retain(|k, v| !(*k as u64 + *v).is_multiple_of(5));
                    continue;
                }
                _ => assert_eq!(a.get(&k), b.get(&k)),
            }
        }
        assert_eq!(a.len(), b.len());
        assert!(a.iter().eq(b.iter()));
        assert_eq!(a.last_key_value(), b.last_key_value());
    }

    #[test]
    fn json_is_a_btreemaps() {
        let t = r#"{"b": 2, "a": 1, "c": 3, "a": 4}"#;
        let a: BTreeMap<String, u32> = serde_json::from_str(t).unwrap();
        let b: SortedMap<String, u32> = serde_json::from_str(t).unwrap();
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        assert_eq!(b.get("a"), Some(&4));
        let v: SortedMap<String, u32> = crate::core::json::from_text(t).unwrap();
        assert_eq!(v, b);
        assert!(serde_json::from_str::<SortedMap<String, u32>>("[1]").is_err());
    }

    #[test]
    fn collects_and_appends_like_a_btreemap() {
        let items = [(3, "c"), (1, "a"), (3, "z"), (2, "b")];
        let a: BTreeMap<_, _> = items.into_iter().collect();
        let b: SortedMap<_, _> = items.into_iter().collect();
        assert!(a.iter().eq(b.iter()));
        let mut c = SortedMap::from([(0, "o"), (3, "x")]);
        let mut d = b.clone();
        c.append(&mut d);
        assert!(d.is_empty());
        assert_eq!(
            c.into_iter().collect::<Vec<_>>(),
            vec![(0, "o"), (1, "a"), (2, "b"), (3, "z")]
        );
    }
}
