//! Per-CPU GDT and TSS. Every interrupt vector runs on an IST stack (the
//! prebuilt `core` uses the red zone, so an interrupt must never push onto
//! the interrupted stack); see `idt.rs` for which vector uses which stack.

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
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

pub const KERNEL_CODE: u16 = 0x08;

/// A CPU's descriptor tables; lives inside its per-CPU block.
pub struct CpuTables {
    tss: TaskStateSegment,
    gdt: GlobalDescriptorTable,
}

impl CpuTables {
    pub const fn new() -> Self {
        CpuTables { tss: TaskStateSegment::new(), gdt: GlobalDescriptorTable::new() }
    }

    /// Fill the TSS with IST stack tops carved from `ist_base..ist_base+IST_TOTAL`,
    /// build the GDT and load both, with fresh segment registers.
    pub fn load(&'static mut self, ist_base: u64) {
        let mut top = ist_base;
        for (slot, size) in IST_SIZES.iter().enumerate() {
            top += *size as u64;
            self.tss.interrupt_stack_table[slot] = VirtAddr::new(top & !0xF);
        }
        let tss: &'static TaskStateSegment = &self.tss;
        let code = self.gdt.append(Descriptor::kernel_code_segment());
        let data = self.gdt.append(Descriptor::kernel_data_segment());
        let tss_sel = self.gdt.append(Descriptor::tss_segment(tss));
        debug_assert_eq!(code.0, KERNEL_CODE);
        let gdt: &'static GlobalDescriptorTable = &self.gdt;
        gdt.load();
        // SAFETY: the selectors index the GDT just loaded; the code segment
        // is a 64-bit kernel segment and the TSS descriptor points at a
        // 'static TSS.
        unsafe {
            CS::set_reg(code);
            SS::set_reg(data);
            DS::set_reg(data);
            ES::set_reg(data);
            load_tss(tss_sel);
        }
    }
}

impl Default for CpuTables {
    fn default() -> Self {
        Self::new()
    }
}
