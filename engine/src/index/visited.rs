//! Visited sets for graph walks: a bitset per search, reused across searches on the same thread so a
//! query allocates nothing once warm. Only the words a search touched are cleared afterwards, so the
//! cost of reuse follows the walk, not the graph size.

use std::cell::RefCell;

/// A bitset over node ids that remembers which words it dirtied.
#[derive(Default)]
pub(crate) struct VisitedSet {
    bits: Vec<u64>,
    touched: Vec<u32>,
}

impl VisitedSet {
    /// Marks `id`; true when it was not marked before. Ids beyond the prepared size count as visited.
    #[inline]
    pub fn insert(&mut self, id: u32) -> bool {
        let word = (id >> 6) as usize;
        let bit = 1u64 << (id & 63);
        let Some(w) = self.bits.get_mut(word) else {
            return false;
        };
        if *w & bit != 0 {
            return false;
        }
        if *w == 0 {
            self.touched.push(word as u32);
        }
        *w |= bit;
        true
    }

    fn prepare(&mut self, nodes: usize) {
        for &word in &self.touched {
            self.bits[word as usize] = 0;
        }
        self.touched.clear();
        let words = nodes.div_ceil(64);
        if self.bits.len() < words {
            self.bits.resize(words, 0);
        }
    }
}

thread_local! {
    static POOL: RefCell<Vec<VisitedSet>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with a cleared visited set for `nodes` ids. Sets are taken out of the thread's pool for the
/// duration, so a nested search on the same thread gets its own.
pub(crate) fn with_visited<R>(nodes: usize, f: impl FnOnce(&mut VisitedSet) -> R) -> R {
    let mut set = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
    set.prepare(nodes);
    let out = f(&mut set);
    // A set sized for a huge graph is not worth keeping for the next small one forever; the pool holds
    // at most a couple per thread.
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < 2 {
            p.push(set);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_once_and_resets_between_uses() {
        with_visited(130, |v| {
            assert!(v.insert(0));
            assert!(!v.insert(0));
            assert!(v.insert(129));
            assert!(!v.insert(1000));
        });
        with_visited(130, |v| {
            assert!(v.insert(0));
            assert!(v.insert(129));
        });
        with_visited(10, |outer| {
            assert!(outer.insert(3));
            with_visited(10, |inner| assert!(inner.insert(3)));
            assert!(!outer.insert(3));
        });
    }
}
