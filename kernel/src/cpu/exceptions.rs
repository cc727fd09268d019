//! Rust side of every interrupt that reaches `axiom_trap`: CPU exceptions,
//! NMIs (the stop-all signal) and unexpected vectors. All are fatal: the
//! report names the vector, error code, RIP, CR2 and CPU, then the machine
//! stops with a failing exit code.

use core::sync::atomic::Ordering;

use super::instr::read_cr2;
use crate::smp::percpu;
use crate::{power, println, telemetry};

/// Register state saved by `isr.s` (lowest address first).
#[repr(C)]
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

/// Called by `axiom_isr_common` for every vector except WAKE and SPURIOUS.
#[no_mangle]
extern "C" fn axiom_trap(frame: &mut TrapFrame) {
    let cpu = percpu::current_index();
    if frame.vector == 2 && power::stop_requested() {
        // Another CPU is stopping the machine: park here for good.
        power::acknowledge_stop();
    }
    // A fault while already reporting one: say so briefly and stop.
    if let Some(me) = percpu::try_current() {
        if me.in_fault.swap(true, Ordering::SeqCst) {
            println!("!!! CPU {cpu}: nested fault (vector {}) at RIP {:#x} while reporting a fault", frame.vector, frame.rip);
            power::fail_now();
        }
    }
    let cr2 = read_cr2();
    let (short, name) = match frame.vector {
        v @ 0..=31 => NAMES[v as usize],
        _ => ("IRQ", "unexpected interrupt"),
    };
    {
        let mut c = crate::console::lock();
        c.write_fmt(format_args!(
            "!!! CPU {cpu}: {name} ({short}, vector {}) error code {:#x} at RIP {:#018x}, CR2 {:#x}\n",
            frame.vector, frame.error_code, frame.rip, cr2
        ));
        c.write_fmt(format_args!(
            "    RSP {:#018x} RFLAGS {:#x} CS {:#x} | RAX {:#x} RBX {:#x} RCX {:#x} RDX {:#x}\n    RSI {:#x} RDI {:#x} RBP {:#x} R8 {:#x} R9 {:#x} R10 {:#x} R11 {:#x}\n    R12 {:#x} R13 {:#x} R14 {:#x} R15 {:#x}\n",
            frame.rsp, frame.rflags, frame.cs, frame.rax, frame.rbx, frame.rcx, frame.rdx, frame.rsi, frame.rdi,
            frame.rbp, frame.r8, frame.r9, frame.r10, frame.r11, frame.r12, frame.r13, frame.r14, frame.r15
        ));
    }
    telemetry::emit("error", |o| {
        o.fmt("msg", format_args!("CPU {cpu}: {name} ({short}, vector {}) at RIP {:#x}", frame.vector, frame.rip));
        o.str("kind", "exception");
        o.u64("cpu", cpu as u64).u64("vector", frame.vector).u64("error_code", frame.error_code);
        o.fmt("rip", format_args!("{:#x}", frame.rip)).fmt("cr2", format_args!("{cr2:#x}"));
    });
    power::fail();
}
