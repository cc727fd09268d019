//! AXIOM kernel binary: boot, bring up every CPU, then run the requested mode.
#![no_std]
#![no_main]

mod console;
mod cpu;
mod rt;
mod smp;

core::arch::global_asm!(include_str!("boot/entry.s"), options(att_syntax));

#[no_mangle]
pub extern "C" fn kmain(magic: u32, info: u32) -> ! {
    console::init();
    println!("AXIOM: hello magic={:#x} info={:#x}", magic, info);
    cpu::port::outb(0xf4, 0x10);
    loop {}
}

#[no_mangle]
pub extern "C" fn ap_main(_cpu: u32) -> ! {
    loop {}
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
