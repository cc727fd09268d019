//! From the boot loader to the kernel: `entry.s` (Multiboot1/2 headers,
//! 32-bit entry, long mode, SIMD state) calls the kernel's [`crate::entry!`]
//! function, which runs [`start`]: the early machine set-up, then the
//! kernel's `main` with the parsed boot information ([`info`]). Other CPUs
//! are started through [`ap`]. `rt` provides the symbols a freestanding
//! binary on the Linux target must define (`memcpy` & co).

pub mod ap;
pub mod info;
#[cfg(feature = "runtime")]
mod rt;
pub(crate) mod symbols;

pub use info::{BootInfo, BootInfoError};

#[cfg(feature = "runtime")]
core::arch::global_asm!(include_str!("entry.s"), options(att_syntax));

/// The kernel's `main`: receives the boot information (or why it could not
/// be read) and never returns.
pub type KernelMain = fn(Result<&'static BootInfo, BootInfoError>) -> !;

/// The boot CPU's IST stacks live in .bss, so exceptions are reported before
/// any memory is set up.
#[cfg_attr(not(feature = "runtime"), allow(dead_code))]
mod bsp {
    use core::cell::UnsafeCell;

    use crate::cpu::gdt::IST_TOTAL;
    use crate::cpu::percpu::CpuBlock;

    pub static BLOCK: CpuBlock = CpuBlock::new();

    #[repr(C, align(16))]
    pub struct IstStacks(UnsafeCell<[u8; IST_TOTAL]>);
    // SAFETY: no Rust code reads or writes these bytes; the CPU uses them as
    // the boot CPU's interrupt stacks.
    unsafe impl Sync for IstStacks {}
    pub static IST: IstStacks = IstStacks(UnsafeCell::new([0; IST_TOTAL]));

    pub fn ist_base() -> u64 {
        IST.0.get() as u64
    }
}

/// Early set-up on the boot CPU, then the kernel's `main` (called by the
/// function [`crate::entry!`] defines; `info_addr` is EBX at entry;
/// `cpu_facts` reads the CPU, see [`crate::cpu::facts`]).
#[cfg(feature = "runtime")]
pub fn start(magic: u32, info_addr: u32, cpu_facts: fn() -> crate::cpu::facts::CpuFacts, main: KernelMain) -> ! {
    use spin::Once;

    use crate::cpu::{facts, percpu};
    use crate::legacy::{pic, serial};

    // First: the exit path (QEMU's port or a halt) depends on them.
    facts::set(cpu_facts());
    // Before anything else: the BIOS left the PIT ticking into the 8259s.
    pic::mask_all();
    serial::init();
    percpu::register(&bsp::BLOCK, 0);
    bsp::BLOCK.set_ist_base(bsp::ist_base());
    percpu::install(&bsp::BLOCK);

    // BootInfo is large (the memory map): one copy, kept for the whole run.
    static INFO: Once<Result<BootInfo, BootInfoError>> = Once::new();
    let info = INFO.call_once(|| BootInfo::parse(magic, info_addr as u64, &crate::mem::BootPhysMem));
    main(info.as_ref().map_err(|e| *e))
}
