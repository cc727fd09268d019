//! AXIOM kernel binary: the hardware layer's entry calls
//! [`axiom_kernel::boot::main`] on the boot CPU (see `kernel/src/boot.rs`
//! for the init order); the panic handler reports through the kernel's
//! telemetry and stops the machine.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

axiom_hw::entry!(axiom_kernel::boot::main, axiom_kernel::boot::cpu_facts);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    axiom_kernel::faults::panic(info)
}
