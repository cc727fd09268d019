//! CRC32C (Castagnoli), the checksum `pack` stores per layer extent and the
//! kernel verifies after reading an extent from NVMe.
//!
//! SSE4.2's `crc32` instruction when the CPU has it, else a slice-by-8 table.
//! Both give the same value; the CPU is asked once ([`crate::cpu`]) and the
//! answer kept in a static.

use core::sync::atomic::{AtomicU8, Ordering};

const POLY_REFLECTED: u32 = 0x82F6_3B78;

/// Incremental CRC32C: `update` any number of times, then `finish`.
#[derive(Clone, Copy, Debug)]
pub struct Crc32c {
    state: u32,
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    pub const fn new() -> Self {
        Self { state: !0 }
    }

    #[allow(unsafe_code)] // calls the SSE4.2 `crc32` path once CPUID reported it
    pub fn update(&mut self, bytes: &[u8]) {
        self.state = if has_sse42() {
            // SAFETY: has_sse42() checked CPUID for SSE4.2 just above.
            unsafe { update_sse42(self.state, bytes) }
        } else {
            update_table(self.state, bytes)
        };
    }

    pub fn finish(&self) -> u32 {
        !self.state
    }
}

/// CRC32C of `bytes` in one call.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut c = Crc32c::new();
    c.update(bytes);
    c.finish()
}

/// 0 = not checked yet, 1 = no SSE4.2, 2 = SSE4.2.
static SSE42: AtomicU8 = AtomicU8::new(0);

fn has_sse42() -> bool {
    match SSE42.load(Ordering::Relaxed) {
        0 => {
            let yes = crate::cpu::CpuFeatures::detect().sse42;
            SSE42.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
        v => v == 2,
    }
}

#[target_feature(enable = "sse4.2")]
fn update_sse42(mut crc: u32, bytes: &[u8]) -> u32 {
    use core::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut words = bytes.chunks_exact(8);
    let mut crc64 = crc as u64;
    for w in &mut words {
        let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        crc64 = _mm_crc32_u64(crc64, v);
    }
    crc = crc64 as u32;
    for &b in words.remainder() {
        crc = _mm_crc32_u8(crc, b);
    }
    crc
}

/// Slice-by-8 tables, built at compile time.
static TABLES: [[u32; 256]; 8] = build_tables();

const fn build_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY_REFLECTED } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

fn update_table(mut crc: u32, bytes: &[u8]) -> u32 {
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let lo = crc ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        let hi = u32::from_le_bytes([w[4], w[5], w[6], w[7]]);
        crc = TABLES[7][(lo & 0xff) as usize]
            ^ TABLES[6][((lo >> 8) & 0xff) as usize]
            ^ TABLES[5][((lo >> 16) & 0xff) as usize]
            ^ TABLES[4][(lo >> 24) as usize]
            ^ TABLES[3][(hi & 0xff) as usize]
            ^ TABLES[2][((hi >> 8) & 0xff) as usize]
            ^ TABLES[1][((hi >> 16) & 0xff) as usize]
            ^ TABLES[0][(hi >> 24) as usize];
    }
    for &b in words.remainder() {
        crc = (crc >> 8) ^ TABLES[0][((crc ^ b as u32) & 0xff) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn known_vectors() {
        // RFC 3720 (iSCSI) appendix B.4 test vectors and the usual check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let inc: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&inc), 0x46DD_794E);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn incremental_equals_one_shot_and_the_table() {
        let data = data();
        let table = !update_table(!0, &data);
        assert_eq!(crc32c(&data), table);
        let mut c = Crc32c::new();
        for chunk in data.chunks(333) {
            c.update(chunk);
        }
        assert_eq!(c.finish(), table);
    }

    /// `crc32c` above takes the SSE4.2 path wherever the CPU has it: here it must.
    #[test]
    #[cfg_attr(not(axiom_cpu_sse42), ignore = "this machine lacks SSE4.2")]
    fn the_sse42_path_matches_the_table() {
        assert!(has_sse42(), "built on a machine with SSE4.2, running on one without: rebuild the tests here");
        let data = data();
        for len in [0, 1, 7, 8, 9, 1000, data.len()] {
            assert_eq!(crc32c(&data[..len]), !update_table(!0, &data[..len]), "{len} bytes");
        }
    }

    fn data() -> Vec<u8> {
        (0..10_007u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()
    }
}
