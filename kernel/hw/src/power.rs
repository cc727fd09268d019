//! Ending a run: exit QEMU through `isa-debug-exit`, stop every CPU on
//! failure (NMI to all others), and halt on bare metal.
//!
//! QEMU turns a write of `v` into exit status `(v << 1) | 1`: success (0x10)
//! exits with 33, failure (0x11) with 35. The port is only written under a
//! hypervisor; on bare metal the machine halts and the serial log says why.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::cpu::{facts, halt_forever, percpu};
use crate::legacy::{debug_exit, serial};
use crate::{apic, time};

const EXIT_SUCCESS: u8 = 0x10;
const EXIT_FAILURE: u8 = 0x11;

static STOP: AtomicBool = AtomicBool::new(false);
static STOPPED: AtomicUsize = AtomicUsize::new(0);

/// Another CPU is stopping the machine.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Called on a CPU that received the stop NMI: park for good.
pub(crate) fn acknowledge_stop() -> ! {
    STOPPED.fetch_add(1, Ordering::SeqCst);
    halt_forever()
}

fn exit(code: u8) -> ! {
    if facts::get().hypervisor {
        debug_exit::exit(code);
    }
    let _ = writeln!(serial::Writer, "AXIOM: halted ({}).", if code == EXIT_SUCCESS { "success" } else { "failure" });
    halt_forever()
}

/// Successful end of the run (after `@done`).
pub fn success() -> ! {
    stop_other_cpus();
    exit(EXIT_SUCCESS)
}

/// Failing end of the run: stop every other CPU, then exit with failure.
pub fn fail() -> ! {
    stop_other_cpus();
    exit(EXIT_FAILURE)
}

/// Failing end without trying to stop others (nested faults).
pub fn fail_now() -> ! {
    exit(EXIT_FAILURE)
}

/// NMI every other online CPU and wait (bounded) until they have parked.
fn stop_other_cpus() {
    if STOP.swap(true, Ordering::SeqCst) {
        // Another CPU is already stopping the machine; it will exit.
        halt_forever();
    }
    let others = percpu::online().count().saturating_sub(1);
    if others == 0 || !apic::is_ready() {
        return;
    }
    apic::nmi_all_others();
    let deadline = time::deadline_us(100_000);
    while STOPPED.load(Ordering::SeqCst) < others && !time::passed(deadline) {
        core::hint::spin_loop();
    }
}
