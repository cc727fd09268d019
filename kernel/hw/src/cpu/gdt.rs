//! Per-CPU GDT and TSS. Every interrupt vector runs on an IST stack (the
//! prebuilt `core` uses the red zone, so an interrupt must never push onto
//! the interrupted stack); see `idt.rs` for which vector uses which stack.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// IST slots (1-based as the IDT encodes them).
pub const IST_EXCEPTION: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_DOUBLE_FAULT: u8 = 3;
pub const IST_MACHINE_CHECK: u8 = 4;
pub const IST_INTERRUPT: u8 = 5;
pub const IST_COUNT: usize = 5;

/// Stack size of each IST slot, in bytes (exception reports format text, so
/// that stack is the largest).
pub const IST_SIZES: [usize; IST_COUNT] = [64 << 10, 16 << 10, 16 << 10, 16 << 10, 16 << 10];
pub const IST_TOTAL: usize = (64 + 16 * 4) << 10;
const _: () = {
    let mut sum = 0;
    let mut i = 0;
    while i < IST_COUNT {
        sum += IST_SIZES[i];
        i += 1;
    }
    assert!(sum == IST_TOTAL);
};

pub const KERNEL_CODE: u16 = 0x08;

struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

/// A CPU's descriptor tables; lives inside its per-CPU block. Built once, in
/// place, then loaded by their CPU.
pub struct CpuTables {
    tss: Once<TaskStateSegment>,
    gdt: Once<(GlobalDescriptorTable, Selectors)>,
}

impl CpuTables {
    pub const fn new() -> Self {
        CpuTables { tss: Once::new(), gdt: Once::new() }
    }

    /// Build the TSS (IST stack tops carved from `ist_base..ist_base+IST_TOTAL`)
    /// and the GDT, and load both with fresh segment registers. The per-CPU
    /// block calls this exactly once, on its own CPU.
    pub fn load(&'static self, ist_base: u64) {
        let tss: &'static TaskStateSegment = self.tss.call_once(|| {
            let mut tss = TaskStateSegment::new();
            let mut top = ist_base;
            for (slot, size) in IST_SIZES.iter().enumerate() {
                top += *size as u64;
                tss.interrupt_stack_table[slot] = VirtAddr::new(top & !0xF);
            }
            tss
        });
        let (gdt, sel) = self.gdt.call_once(|| {
            let mut gdt = GlobalDescriptorTable::new();
            let code = gdt.append(Descriptor::kernel_code_segment());
            let data = gdt.append(Descriptor::kernel_data_segment());
            let tss = gdt.append(Descriptor::tss_segment(tss));
            (gdt, Selectors { code, data, tss })
        });
        debug_assert_eq!(sel.code.0, KERNEL_CODE);
        gdt.load();
        // SAFETY: the selectors index the GDT just loaded; the code segment
        // is a 64-bit kernel segment and the TSS descriptor points at a
        // 'static TSS, loaded once per CPU (a second `ltr` would fault on the
        // busy TSS, and `percpu::install` runs once per block).
        unsafe {
            CS::set_reg(sel.code);
            SS::set_reg(sel.data);
            DS::set_reg(sel.data);
            ES::set_reg(sel.data);
            load_tss(sel.tss);
        }
    }
}

impl Default for CpuTables {
    fn default() -> Self {
        Self::new()
    }
}
