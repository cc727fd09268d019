//! `selftest=fault` and `selftest=panic`: failures on purpose, to prove that
//! an exception or panic on any CPU ends in `@error` and a failing exit, not
//! a hang.

use alloc::format;
use alloc::string::String;
use axiom_kernel::cmdline::Cmdline;

use crate::println;
use crate::smp;

fn raise(kind: &str) {
    match kind {
        "pf" => {
            // Canonical but unmapped (the identity map covers RAM only).
            let addr = 0x0000_7F00_DEAD_0000u64 as *const u64;
            // SAFETY: deliberately faults; the page-fault handler never returns.
            let v = unsafe { core::ptr::read_volatile(addr) };
            println!("unreachable: read {v}");
        }
        "gp" => {
            let addr = 0xDEAD_0000_0000_0000u64 as *const u64; // non-canonical
            // SAFETY: deliberately faults (#GP); the handler never returns.
            let v = unsafe { core::ptr::read_volatile(addr) };
            println!("unreachable: read {v}");
        }
        // SAFETY: ud2 raises #UD; the handler never returns.
        "ud" => unsafe { core::arch::asm!("ud2") },
        "de" => {
            // SAFETY: divides by zero on purpose (#DE); the handler never returns.
            unsafe { core::arch::asm!("xor edx, edx", "xor eax, eax", "xor ecx, ecx", "div ecx", out("eax") _, out("edx") _, out("ecx") _) }
        }
        _ => {}
    }
}

pub fn run_fault(cmd: &Cmdline) -> Result<(), String> {
    let kind = cmd.choice_or("fault", &["pf", "gp", "ud", "de"], "pf, gp, ud or de", "pf").map_err(|e| format!("{e}"))?;
    let online = smp::online_indices();
    let last = *online.last().expect("the BSP is online");
    let target = cmd.u64_or("fault_cpu", last as u64).map_err(|e| format!("{e}"))? as usize;
    if !online.contains(&target) {
        return Err(format!("fault_cpu={target} is not an online CPU (online: {online:?})"));
    }
    println!("selftest fault: raising {kind} on CPU {target}");
    let kind_owned = String::from(kind);
    smp::run_on(&[target], |_w| raise(&kind_owned));
    Err(format!("the {kind} exception on CPU {target} was not raised"))
}

pub fn run_panic(_cmd: &Cmdline) -> Result<(), String> {
    panic!("selftest=panic: panicking on purpose");
}
