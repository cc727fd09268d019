//! Kernel-level per-CPU state, indexed by the hardware layer's CPU index:
//! the launch mailbox, barrier statistics and the CPU's role. (What the
//! hardware needs per CPU, the GS block with its tables and APIC id, lives
//! in `axiom_hw::cpu::percpu`.)

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use super::launch::Mailbox;
use super::Role;
use crate::MAX_CPUS;

/// Per-core counters kept for telemetry.
pub struct CpuStats {
    /// Cycles spent waiting in barriers (all launches).
    pub barrier_wait_cycles: AtomicU64,
    pub barriers: AtomicU64,
    /// Times the core halted while waiting.
    pub parks: AtomicU64,
}

/// One CPU's kernel state.
pub struct CpuState {
    pub mailbox: Mailbox,
    pub stats: CpuStats,
    role: AtomicU8,
}

impl CpuState {
    const fn new() -> Self {
        CpuState {
            mailbox: Mailbox::new(),
            stats: CpuStats { barrier_wait_cycles: AtomicU64::new(0), barriers: AtomicU64::new(0), parks: AtomicU64::new(0) },
            role: AtomicU8::new(Role::Compute as u8),
        }
    }

    pub fn role(&self) -> Role {
        Role::from_u8(self.role.load(Ordering::Relaxed))
    }

    pub(super) fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::Relaxed);
    }
}

static STATES: [CpuState; MAX_CPUS] = [const { CpuState::new() }; MAX_CPUS];

/// The state of the CPU with `index` (any index below [`MAX_CPUS`]).
pub fn state(index: usize) -> &'static CpuState {
    &STATES[index]
}

/// This CPU's state.
pub fn this() -> &'static CpuState {
    state(axiom_hw::cpu::percpu::current_index())
}
