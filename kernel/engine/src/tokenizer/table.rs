//! Compact string storage and look-up for vocabularies: one byte arena with
//! offsets, an open-addressing hash index from bytes to id, and a sorted table
//! of BPE merge ranks. Built once at load; read-only afterwards.

use alloc::vec::Vec;

/// Many byte strings in one allocation; string `i` is `bytes[offs[i]..offs[i+1]]`.
#[derive(Clone, Debug, Default)]
pub struct StrArena {
    bytes: Vec<u8>,
    offs: Vec<u32>,
}

impl StrArena {
    pub fn new() -> Self {
        Self { bytes: Vec::new(), offs: alloc::vec![0] }
    }

    pub fn with_capacity(strings: usize, bytes: usize) -> Self {
        let mut offs = Vec::with_capacity(strings + 1);
        offs.push(0);
        Self { bytes: Vec::with_capacity(bytes), offs }
    }

    /// Appends a string; returns its index.
    pub fn push(&mut self, s: &[u8]) -> u32 {
        self.bytes.extend_from_slice(s);
        self.offs.push(self.bytes.len() as u32);
        (self.offs.len() - 2) as u32
    }

    /// Appends a string assembled by `fill`; returns its index.
    pub fn push_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> u32 {
        fill(&mut self.bytes);
        self.offs.push(self.bytes.len() as u32);
        (self.offs.len() - 2) as u32
    }

    pub fn get(&self, i: u32) -> &[u8] {
        let i = i as usize;
        &self.bytes[self.offs[i] as usize..self.offs[i + 1] as usize]
    }

    /// Total bytes held (for memory reports).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.offs.capacity() * 4
    }
}

const EMPTY: u32 = u32::MAX;

/// FNV-1a, 64-bit: simple, deterministic, good enough for token strings.
fn hash(s: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Open-addressing index from string bytes to the string's index in a
/// [`StrArena`] (linear probing, load factor <= 1/2).
#[derive(Clone, Debug, Default)]
pub struct StrIndex {
    slots: Vec<u32>,
    mask: usize,
    used: usize,
}

impl StrIndex {
    pub fn with_capacity(n: usize) -> Self {
        let size = (n.max(4) * 2).next_power_of_two();
        Self { slots: alloc::vec![EMPTY; size], mask: size - 1, used: 0 }
    }

    /// Looks `s` up among the strings of `arena`.
    pub fn find(&self, arena: &StrArena, s: &[u8]) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = hash(s) as usize & self.mask;
        loop {
            let id = self.slots[i];
            if id == EMPTY {
                return None;
            }
            if arena.get(id) == s {
                return Some(id);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Indexes arena string `id` unless an equal string is already indexed;
    /// returns the id the string resolves to. Grows as needed.
    pub fn insert(&mut self, arena: &StrArena, id: u32) -> u32 {
        if (self.used + 1) * 2 > self.slots.len() {
            self.grow(arena);
        }
        let s = arena.get(id);
        let mut i = hash(s) as usize & self.mask;
        loop {
            let cur = self.slots[i];
            if cur == EMPTY {
                self.slots[i] = id;
                self.used += 1;
                return id;
            }
            if arena.get(cur) == s {
                return cur;
            }
            i = (i + 1) & self.mask;
        }
    }

    fn grow(&mut self, arena: &StrArena) {
        let old = core::mem::take(&mut self.slots);
        let size = (old.len() * 2).max(8);
        self.slots = alloc::vec![EMPTY; size];
        self.mask = size - 1;
        for id in old.into_iter().filter(|&s| s != EMPTY) {
            let mut i = hash(arena.get(id)) as usize & self.mask;
            while self.slots[i] != EMPTY {
                i = (i + 1) & self.mask;
            }
            self.slots[i] = id;
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 4
    }
}

/// BPE merge ranks keyed by the (left, right) string ids, sorted for binary
/// search. The first occurrence of a pair wins, as in llama.cpp.
#[derive(Clone, Debug, Default)]
pub struct MergeRanks {
    keys: Vec<u64>,
    ranks: Vec<u32>,
}

impl MergeRanks {
    /// Builds the table from `(left, right, rank)` triples in rank order.
    pub fn build(mut pairs: Vec<(u64, u32)>) -> Self {
        // Stable sort keeps the lowest rank first among duplicates.
        pairs.sort_by_key(|&(key, _)| key);
        pairs.dedup_by_key(|&mut (key, _)| key);
        let (keys, ranks) = pairs.into_iter().unzip();
        Self { keys, ranks }
    }

    pub fn key(left: u32, right: u32) -> u64 {
        ((left as u64) << 32) | right as u64
    }

    pub fn rank(&self, left: u32, right: u32) -> Option<u32> {
        let i = self.keys.binary_search(&Self::key(left, right)).ok()?;
        Some(self.ranks[i])
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 8 + self.ranks.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_finds_every_string_and_keeps_first_duplicate() {
        let mut arena = StrArena::new();
        let mut index = StrIndex::with_capacity(2);
        let words: [&[u8]; 5] = [b"a", b"bc", b"", b"bc", b"\xff\x00"];
        let mut resolved = Vec::new();
        for w in words {
            let id = arena.push(w);
            resolved.push(index.insert(&arena, id));
        }
        assert_eq!(resolved, [0, 1, 2, 1, 4]);
        assert_eq!(index.find(&arena, b"bc"), Some(1));
        assert_eq!(index.find(&arena, b""), Some(2));
        assert_eq!(index.find(&arena, b"\xff\x00"), Some(4));
        assert_eq!(index.find(&arena, b"zz"), None);
    }

    #[test]
    fn merge_ranks_keep_the_first_rank() {
        let m = MergeRanks::build(alloc::vec![
            (MergeRanks::key(1, 2), 0),
            (MergeRanks::key(3, 4), 1),
            (MergeRanks::key(1, 2), 2),
        ]);
        assert_eq!(m.rank(1, 2), Some(0));
        assert_eq!(m.rank(3, 4), Some(1));
        assert_eq!(m.rank(2, 1), None);
    }
}
