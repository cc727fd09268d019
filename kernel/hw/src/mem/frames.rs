//! Free physical memory as a sorted list of ranges, built from the memory map
//! minus what is in use (kernel image, low memory, boot modules), and carved
//! from by address order. Boot-time memory (page tables, stacks, heap, DMA
//! buffers, the tensor region) is never returned, so no free is needed.

use crate::boot::info::{MemoryRegion, RegionKind};

pub const PAGE: u64 = 4096;
/// Most free ranges tracked (carving with alignment can split ranges).
pub const MAX_RANGES: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    pub start: u64,
    pub end: u64,
}

impl PhysRange {
    pub const fn new(start: u64, end: u64) -> Self {
        PhysRange { start, end }
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Where an allocation may be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Lowest fitting address ending at or below `limit`.
    LowestBelow(u64),
    /// In the largest free range (for one big region).
    Largest,
}

#[derive(Clone, Debug)]
pub struct FreeRanges {
    ranges: [PhysRange; MAX_RANGES],
    count: usize,
}

fn align_up(x: u64, a: u64) -> Option<u64> {
    x.checked_add(a - 1).map(|v| v & !(a - 1))
}

impl FreeRanges {
    /// Usable map entries (trimmed to whole pages) minus every non-usable
    /// entry (firmware maps may overlap) and minus `in_use`.
    pub fn from_map(map: &[MemoryRegion], in_use: &[PhysRange]) -> Self {
        let mut f = FreeRanges { ranges: [PhysRange::new(0, 0); MAX_RANGES], count: 0 };
        for r in map.iter().filter(|r| r.kind == RegionKind::Usable) {
            let start = align_up(r.start, PAGE).unwrap_or(u64::MAX);
            let end = r.end() & !(PAGE - 1);
            if start < end {
                f.add(PhysRange::new(start, end));
            }
        }
        for r in map.iter().filter(|r| r.kind != RegionKind::Usable) {
            f.remove(PhysRange::new(r.start & !(PAGE - 1), align_up(r.end(), PAGE).unwrap_or(u64::MAX)));
        }
        for r in in_use {
            f.remove(PhysRange::new(r.start & !(PAGE - 1), align_up(r.end, PAGE).unwrap_or(u64::MAX)));
        }
        f
    }

    pub fn ranges(&self) -> &[PhysRange] {
        &self.ranges[..self.count]
    }

    pub fn total(&self) -> u64 {
        self.ranges().iter().map(|r| r.len()).sum()
    }

    pub fn largest(&self) -> Option<PhysRange> {
        self.ranges().iter().copied().max_by_key(|r| r.len())
    }

    /// Insert keeping order, merging with neighbours.
    fn add(&mut self, r: PhysRange) {
        if r.is_empty() {
            return;
        }
        let pos = self.ranges().iter().position(|x| x.start > r.start).unwrap_or(self.count);
        if self.count == MAX_RANGES {
            // Keep the bigger ranges: drop the smallest (never seen in practice).
            let (i, smallest) = self.ranges().iter().enumerate().min_by_key(|(_, x)| x.len()).map(|(i, x)| (i, *x)).unwrap();
            if smallest.len() >= r.len() {
                return;
            }
            self.delete(i);
            return self.add(r);
        }
        self.ranges.copy_within(pos..self.count, pos + 1);
        self.ranges[pos] = r;
        self.count += 1;
        // Merge overlapping or touching neighbours.
        let mut i = 0;
        while i + 1 < self.count {
            if self.ranges[i].end >= self.ranges[i + 1].start {
                self.ranges[i].end = self.ranges[i].end.max(self.ranges[i + 1].end);
                self.delete(i + 1);
            } else {
                i += 1;
            }
        }
    }

    fn delete(&mut self, i: usize) {
        self.ranges.copy_within(i + 1..self.count, i);
        self.count -= 1;
    }

    /// Take `hole` out of the free ranges.
    pub fn remove(&mut self, hole: PhysRange) {
        if hole.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.count {
            let r = self.ranges[i];
            if r.end <= hole.start || r.start >= hole.end {
                i += 1;
                continue;
            }
            let left = PhysRange::new(r.start, hole.start.max(r.start));
            let right = PhysRange::new(hole.end.min(r.end), r.end);
            self.delete(i);
            self.add(left);
            self.add(right);
            // Re-scan from the start: indices moved.
            i = 0;
        }
    }

    /// Carve `size` bytes aligned to `align` (a power of two, at least a page).
    pub fn alloc(&mut self, size: u64, align: u64, placement: Placement) -> Option<u64> {
        if size == 0 || !align.is_power_of_two() {
            return None;
        }
        let align = align.max(PAGE);
        let size = align_up(size, PAGE)?;
        let fits = |r: &PhysRange| -> Option<u64> {
            let start = align_up(r.start, align)?;
            let end = start.checked_add(size)?;
            (end <= r.end).then_some(start)
        };
        let start = match placement {
            Placement::LowestBelow(limit) => {
                self.ranges().iter().filter_map(fits).find(|&s| s + size <= limit)?
            }
            Placement::Largest => {
                let r = self.ranges().iter().filter(|r| fits(r).is_some()).max_by_key(|r| r.len())?;
                fits(r)?
            }
        };
        self.remove(PhysRange::new(start, start + size));
        Some(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: u64, len: u64, kind: RegionKind) -> MemoryRegion {
        MemoryRegion { start, len, kind }
    }

    fn qemu_map() -> [MemoryRegion; 5] {
        [
            region(0, 0x9FC00, RegionKind::Usable),
            region(0x9FC00, 0x400, RegionKind::Reserved),
            region(0xF0000, 0x10000, RegionKind::Reserved),
            region(0x10_0000, 0x7FEE_0000, RegionKind::Usable),
            region(0x7FFE_0000, 0x20000, RegionKind::Reserved),
        ]
    }

    #[test]
    fn builds_free_ranges_minus_reserved() {
        let f = FreeRanges::from_map(&qemu_map(), &[PhysRange::new(0, 0x10_0000), PhysRange::new(0x10_0000, 0x22_3456)]);
        assert_eq!(f.ranges(), &[PhysRange::new(0x22_4000, 0x7FFE_0000)]);
        // Overlapping firmware entries: reserved wins; touching usable merge.
        let map = [
            region(0x10_0000, 0x10_0000, RegionKind::Usable),
            region(0x20_0000, 0x10_0000, RegionKind::Usable),
            region(0x28_0000, 0x1000, RegionKind::AcpiNvs),
        ];
        let f = FreeRanges::from_map(&map, &[]);
        assert_eq!(f.ranges(), &[PhysRange::new(0x10_0000, 0x28_0000), PhysRange::new(0x28_1000, 0x30_0000)]);
        assert_eq!(f.total(), 0x1F_F000);
    }

    #[test]
    fn allocates_low_aligned_and_largest() {
        let mut f = FreeRanges::from_map(&qemu_map(), &[PhysRange::new(0, 0x1000), PhysRange::new(0x10_0000, 0x20_1000)]);
        assert_eq!(f.alloc(0x1000, 0x1000, Placement::LowestBelow(0x10_0000)), Some(0x1000));
        assert_eq!(f.alloc(100, 8, Placement::LowestBelow(u64::MAX)), Some(0x2000), "sizes round up to pages");
        let big = f.alloc(0x20_0000, 0x20_0000, Placement::LowestBelow(u64::MAX)).unwrap();
        assert_eq!(big, 0x40_0000, "2 MiB aligned, gap left free");
        assert!(f.ranges().contains(&PhysRange::new(0x20_1000, 0x40_0000)));
        assert_eq!(f.alloc(0x1000, 0x1000, Placement::LowestBelow(0x1000)), None, "nothing below the limit");
        let largest = f.largest().unwrap();
        let region = f.alloc(1 << 30, 1 << 21, Placement::Largest).unwrap();
        assert_eq!(region % (1 << 21), 0);
        assert!(region >= largest.start && region + (1 << 30) <= largest.end);
        assert_eq!(f.alloc(1 << 40, 0x1000, Placement::Largest), None);
        assert_eq!(f.alloc(0, 0x1000, Placement::Largest), None);
        assert_eq!(f.alloc(0x1000, 3, Placement::Largest), None);
        // Everything carved is gone from the free list.
        for r in f.ranges() {
            assert!(r.end <= region || r.start >= region + (1 << 30));
        }
    }
}
