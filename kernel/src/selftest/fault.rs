//! `selftest=fault` and `selftest=panic`: failures on purpose, to prove that
//! an exception or panic on any CPU ends in `@error` and a failing exit, not
//! a hang.

use alloc::format;
use alloc::string::String;

use axiom_hw::cpu::fault::{self, Fault};

use axiom_proto::cmdline::keys;

use crate::boot::Context;
use crate::println;
use crate::smp;

pub fn run_fault(ctx: &Context) -> Result<(), String> {
    let cmd = ctx.cmd;
    let kind = cmd.get(&keys::FAULT);
    let fault = match kind {
        "gp" => Fault::GeneralProtection,
        "ud" => Fault::InvalidOpcode,
        "de" => Fault::DivideError,
        _ => Fault::PageFault,
    };
    let online = smp::online_indices();
    let last = *online.last().expect("the BSP is online");
    let target = cmd.get(&keys::FAULT_CPU).map_or(last, |cpu| cpu as usize);
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
