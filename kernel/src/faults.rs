//! Fatal events above the hardware layer: the report of a CPU exception
//! (registered with `axiom_hw::cpu::trap` at boot) and of a panic. Both
//! print the details, emit `@error` and stop every CPU with a failing exit.

use axiom_hw::cpu::percpu;
use axiom_hw::cpu::trap::{self, Trap};
use axiom_hw::power;

use axiom_proto::json::Truncating;
use axiom_proto::telemetry::Hex;

use crate::telemetry::events::Error;
use crate::telemetry::Message;
use crate::{console, println, telemetry};

/// A panic's `file:line`.
type Location = Truncating<256>;

/// Route CPU exceptions (on any CPU) to [`report_trap`].
pub fn install() {
    trap::set_handler(report_trap);
}

fn report_trap(t: &Trap) -> ! {
    let f = t.frame;
    let (cpu, name, short) = (t.cpu, t.name, t.short);
    {
        let mut c = console::lock();
        c.write_fmt(format_args!(
            "!!! CPU {cpu}: {name} ({short}, vector {}) error code {:#x} at RIP {:#018x}, CR2 {:#x}\n",
            f.vector, f.error_code, f.rip, t.cr2
        ));
        c.write_fmt(format_args!(
            "    RSP {:#018x} RFLAGS {:#x} CS {:#x} | RAX {:#x} RBX {:#x} RCX {:#x} RDX {:#x}\n    RSI {:#x} RDI {:#x} RBP {:#x} R8 {:#x} R9 {:#x} R10 {:#x} R11 {:#x}\n    R12 {:#x} R13 {:#x} R14 {:#x} R15 {:#x}\n",
            f.rsp, f.rflags, f.cs, f.rax, f.rbx, f.rcx, f.rdx, f.rsi, f.rdi, f.rbp, f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15
        ));
    }
    let msg = Message::format(format_args!("CPU {cpu}: {name} ({short}, vector {}) at RIP {:#x}", f.vector, f.rip));
    telemetry::emit(&Error {
        kind: Some("exception".into()),
        cpu: Some(cpu as u64),
        vector: Some(f.vector),
        error_code: Some(f.error_code),
        rip: Some(Hex(f.rip)),
        cr2: Some(Hex(t.cr2)),
        ..Error::msg(msg.as_str())
    });
    power::fail()
}

/// The panic handler's body (the binary's `#[panic_handler]` calls this).
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    let cpu = percpu::current_index();
    let loc = info.location();
    println!("!!! CPU {cpu}: panic: {}", info.message());
    let msg = Message::format(format_args!("CPU {cpu} panicked: {}", info.message()));
    let location = loc.map(|l| Location::format(format_args!("{}:{}", l.file(), l.line())));
    telemetry::emit(&Error {
        kind: Some("panic".into()),
        cpu: Some(cpu as u64),
        location: location.as_ref().map(|l| l.as_str().into()),
        ..Error::msg(msg.as_str())
    });
    power::fail()
}
