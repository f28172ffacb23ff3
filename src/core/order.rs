//! One stable sort for every element type.
//!
//! Why: `slice::sort_by` compiles its whole stable sort (driftsort: quicksort, merge, small
//! sorts; ~3 KB of wasm) once per element type and comparator, and the Worker sorted four
//! kinds of records. [`sort_by`] sorts the positions `0..n` instead, through a comparator
//! behind a `dyn` reference, so the sort itself exists once; each element type adds only the
//! moves of the permutation. The order is `sort_by`'s: stable, equal elements keep theirs.

use std::cmp::Ordering;

/// Sorts `v` by `cmp`, stably (as `v.sort_by(cmp)`).
pub fn sort_by<T>(v: &mut Vec<T>, cmp: impl Fn(&T, &T) -> Ordering) {
    let order = {
        let items: &[T] = v;
        positions(items.len(), &|a, b| cmp(&items[a], &items[b]))
    };
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    v.extend(
        order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take)),
    );
}

/// `0..n` sorted stably by `cmp` over positions: the one instance of the sort.
fn positions(n: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|a, b| cmp(*a, *b));
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_std_stable_sort() {
        // Pairs with many equal keys: stability shows in the second member.
        let mut seed = 7u64;
        for n in [0usize, 1, 2, 3, 17, 64, 500] {
            let v: Vec<(u8, usize)> = (0..n)
                .map(|i| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((seed >> 59) as u8, i)
                })
                .collect();
            let mut ours = v.clone();
            sort_by(&mut ours, |a, b| a.0.cmp(&b.0));
            let mut std = v;
            std.sort_by_key(|a| a.0);
            assert_eq!(ours, std, "n = {n}");
        }
    }

    #[test]
    fn moves_owned_values() {
        let mut v = vec!["c".to_string(), "a".into(), "b".into(), "a".into()];
        sort_by(&mut v, |a, b| a.cmp(b));
        assert_eq!(v, ["a", "a", "b", "c"]);
    }
}
