//! Every interrupt that reaches Rust (`axiom_trap`, called by `isr.s`): CPU
//! exceptions, NMIs (the stop-all signal) and unexpected vectors. All are
//! fatal. A stop NMI parks the CPU for good; a fault while this CPU already
//! reports one stops the machine at once; anything else goes to the handler
//! the kernel registered with [`set_handler`] (which reports and ends the
//! run), or, before one is registered, to a short report on COM1 and a
//! failing exit.

use core::fmt::Write;

use spin::Once;

/// Register state saved by `isr.s` (lowest address first).
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// One fatal interrupt, as the kernel's handler sees it.
pub struct Trap<'a> {
    /// Index of the CPU it happened on.
    pub cpu: usize,
    /// Short mnemonic (`#PF`; `IRQ` for an unexpected interrupt).
    pub short: &'static str,
    /// What it is, in words.
    pub name: &'static str,
    /// CR2 at the time (the faulting address of a page fault).
    pub cr2: u64,
    pub frame: &'a TrapFrame,
}

const NAMES: [(&str, &str); 32] = [
    ("#DE", "divide error"),
    ("#DB", "debug"),
    ("NMI", "non-maskable interrupt"),
    ("#BP", "breakpoint"),
    ("#OF", "overflow"),
    ("#BR", "bound range exceeded"),
    ("#UD", "invalid opcode"),
    ("#NM", "device not available"),
    ("#DF", "double fault"),
    ("#MF9", "coprocessor segment overrun"),
    ("#TS", "invalid TSS"),
    ("#NP", "segment not present"),
    ("#SS", "stack-segment fault"),
    ("#GP", "general protection fault"),
    ("#PF", "page fault"),
    ("#15", "reserved"),
    ("#MF", "x87 floating-point error"),
    ("#AC", "alignment check"),
    ("#MC", "machine check"),
    ("#XM", "SIMD floating-point exception"),
    ("#VE", "virtualization exception"),
    ("#CP", "control protection exception"),
    ("#22", "reserved"),
    ("#23", "reserved"),
    ("#24", "reserved"),
    ("#25", "reserved"),
    ("#26", "reserved"),
    ("#27", "reserved"),
    ("#HV", "hypervisor injection"),
    ("#VC", "VMM communication"),
    ("#SX", "security exception"),
    ("#31", "reserved"),
];

/// The kernel's report of a fatal interrupt; must end the run.
pub type Handler = fn(&Trap) -> !;

static HANDLER: Once<Handler> = Once::new();

/// Route fatal interrupts to `handler` (the first registration wins).
pub fn set_handler(handler: Handler) {
    HANDLER.call_once(|| handler);
}

/// Called by `axiom_isr_common` for every vector except WAKE and SPURIOUS.
#[cfg(feature = "runtime")]
#[no_mangle]
extern "C" fn axiom_trap(frame: &mut TrapFrame) -> ! {
    handle(frame)
}

#[cfg_attr(not(feature = "runtime"), allow(dead_code))]
fn handle(frame: &TrapFrame) -> ! {
    use crate::{legacy::serial, power};
    let cpu = super::percpu::current_index();
    if frame.vector == 2 && power::stop_requested() {
        // Another CPU is stopping the machine: park here for good.
        power::acknowledge_stop();
    }
    if super::percpu::enter_fault() {
        // A fault while already reporting one: say so briefly and stop.
        let _ = writeln!(
            serial::Writer,
            "!!! CPU {cpu}: nested fault (vector {}) at RIP {:#x} while reporting a fault",
            frame.vector,
            frame.rip
        );
        power::fail_now();
    }
    let (short, name) = match frame.vector {
        v @ 0..=31 => NAMES[v as usize],
        _ => ("IRQ", "unexpected interrupt"),
    };
    let trap = Trap { cpu, short, name, cr2: super::read_cr2(), frame };
    match HANDLER.get() {
        Some(handler) => handler(&trap),
        None => {
            let _ = writeln!(
                serial::Writer,
                "!!! CPU {cpu}: {name} ({short}, vector {}) error code {:#x} at RIP {:#018x}, CR2 {:#x} (before the kernel's handler)",
                frame.vector,
                frame.error_code,
                frame.rip,
                trap.cr2
            );
            power::fail()
        }
    }
}
