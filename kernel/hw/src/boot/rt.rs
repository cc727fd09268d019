//! Symbols a freestanding binary on the `x86_64-unknown-linux-gnu` target must
//! provide itself: the C memory functions `core` calls, and the personality
//! routine the prebuilt `core` refers to (we never unwind: panic = abort).
//!
//! The copies use `rep movsb` / `rep stosb` (fast on every CPU with ERMSB) in
//! inline assembly, so the compiler cannot turn them back into calls to
//! themselves.

use core::arch::asm;

/// # Safety
/// C `memcpy` contract: `dest` and `src` valid for `n` bytes, not overlapping.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid and disjoint; the
    // direction flag is clear (System V ABI).
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// C `memmove` contract: `dest` and `src` valid for `n` bytes; may overlap.
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // Forward copy is safe: dest is below src or the ranges do not overlap.
        // SAFETY: as for memcpy; a forward byte copy handles dest < src overlap.
        unsafe {
            asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
                 options(nostack, preserves_flags));
        }
    } else {
        // dest overlaps the tail of src: copy backwards.
        // SAFETY: both ranges are valid for n bytes; the direction flag is
        // restored to clear before returning, as the ABI requires.
        unsafe {
            asm!("std", "rep movsb", "cld",
                 inout("rcx") n => _, inout("rdi") dest.add(n).wrapping_sub(1) => _,
                 inout("rsi") src.add(n).wrapping_sub(1) => _, options(nostack));
        }
    }
    dest
}

/// # Safety
/// C `memset` contract: `dest` valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees dest is valid for n bytes.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") value as u8,
             options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// C `memcmp` contract: both pointers valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and both ranges are valid for n bytes; volatile reads
        // keep the compiler from recognising this loop as a memcmp call.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// # Safety
/// C `bcmp` contract: both pointers valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// Referenced by the prebuilt `core` (`DW.ref.rust_eh_personality`); never
/// called, since every profile uses `panic = "abort"`.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// Referenced by landing pads in the prebuilt `alloc` (compiled for
/// unwinding). Never reached: with `panic = "abort"` nothing unwinds.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    crate::cpu::halt_forever()
}
