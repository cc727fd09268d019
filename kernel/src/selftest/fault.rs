//! `selftest=fault` and `selftest=panic`: failures on purpose, to prove that
//! an exception or panic on any CPU ends in `@error` and a failing exit, not
//! a hang.

use alloc::format;
use alloc::string::String;

use axiom_hw::cpu::fault::{self, Fault};

use crate::boot::Context;
use crate::println;
use crate::smp;

pub fn run_fault(ctx: &Context) -> Result<(), String> {
    let cmd = ctx.cmd;
    let kind = cmd.choice_or("fault", &["pf", "gp", "ud", "de"], "pf, gp, ud or de", "pf").map_err(|e| format!("{e}"))?;
    let fault = match kind {
        "gp" => Fault::GeneralProtection,
        "ud" => Fault::InvalidOpcode,
        "de" => Fault::DivideError,
        _ => Fault::PageFault,
    };
    let online = smp::online_indices();
    let last = *online.last().expect("the BSP is online");
    let target = cmd.u64_or("fault_cpu", last as u64).map_err(|e| format!("{e}"))? as usize;
    if !online.contains(&target) {
        return Err(format!("fault_cpu={target} is not an online CPU (online: {online:?})"));
    }
    println!("selftest fault: raising {kind} on CPU {target}");
    smp::run_on(&[target], move |_cpu| fault::raise(fault));
    Err(format!("the {kind} exception on CPU {target} was not raised"))
}

pub fn run_panic(_ctx: &Context) -> Result<(), String> {
    panic!("selftest=panic: panicking on purpose");
}
