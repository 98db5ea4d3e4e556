//! Bounded selection of the `k` smallest `(key, offset)` pairs, shared by exact scan and graph search.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A lower-is-better key with the row offset as tie-breaker, so every order is total and deterministic.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scored {
    pub key: f32,
    pub offset: u32,
}

impl Scored {
    #[inline]
    pub fn new(key: f32, offset: u32) -> Self {
        // A NaN (only from NaN input) ranks last instead of poisoning the order.
        let key = if key.is_nan() { f32::INFINITY } else { key };
        Scored { key, offset }
    }
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then(self.offset.cmp(&other.offset))
    }
}

/// The `k` best (smallest) entries seen so far; the worst of them sits on top of a max-heap.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Scored>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(1 << 16) + 1),
        }
    }

    #[inline]
    pub fn push(&mut self, key: f32, offset: u32) {
        self.push_scored(Scored::new(key, offset));
    }

    #[inline]
    pub fn push_scored(&mut self, s: Scored) {
        if self.heap.len() < self.k {
            self.heap.push(s);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if s < *worst {
                *worst = s;
            }
        }
    }

    pub fn merge(mut self, other: TopK) -> TopK {
        for s in other.heap {
            self.push_scored(s);
        }
        self
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<(f32, u32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|s| (s.key, s.offset))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_k_smallest_with_offset_tiebreak() {
        let mut t = TopK::new(3);
        for (key, off) in [
            (5.0, 0),
            (1.0, 9),
            (1.0, 2),
            (f32::NAN, 4),
            (3.0, 1),
            (0.5, 7),
        ] {
            t.push(key, off);
        }
        assert_eq!(t.into_sorted(), vec![(0.5, 7), (1.0, 2), (1.0, 9)]);
        let mut a = TopK::new(2);
        a.push(2.0, 0);
        let mut b = TopK::new(2);
        b.push(1.0, 1);
        b.push(3.0, 2);
        assert_eq!(a.merge(b).into_sorted(), vec![(1.0, 1), (2.0, 0)]);
        assert!(TopK::new(0).into_sorted().is_empty());
    }
}
