//! Symmetric multiprocessing above the hardware layer: CPU roles, the AP
//! start-up sequence ([`startup`]), kernel per-CPU state ([`percpu`]), the
//! lockstep barrier and parking ([`barrier`]) and the SPMD launch
//! ([`launch`]).
//!
//! After bring-up every online CPU has a role, from the mode the command
//! line asks for: index 0 is the BSP; in inference with an I/O core (see
//! `infer::InferArgs::io_core`) the last CPU is the I/O core; all others
//! compute. Nothing preempts anyone: there is no timer interrupt anywhere.

pub mod barrier;
pub mod launch;
pub mod percpu;
pub mod startup;

use alloc::vec::Vec;

use axiom_hw::cpu::percpu as hwcpu;

pub use barrier::ParkMethod;
pub use launch::{run_on, run_with_helpers, LaunchedCpu};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    Bsp = 0,
    Compute = 1,
    Io = 2,
}

impl Role {
    pub fn from_u8(v: u8) -> Role {
        match v {
            0 => Role::Bsp,
            2 => Role::Io,
            _ => Role::Compute,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Bsp => "bsp",
            Role::Compute => "compute",
            Role::Io => "io",
        }
    }
}

/// Indices of every online CPU (BSP first).
pub fn online_indices() -> Vec<usize> {
    hwcpu::online().map(|c| c.index()).collect()
}

pub fn online_count() -> usize {
    hwcpu::online().count()
}

/// The role of the CPU with `index`.
pub fn role(index: usize) -> Role {
    percpu::state(index).role()
}

/// Indices of the online CPUs with `role`.
pub fn cpus_with_role(role: Role) -> Vec<usize> {
    online_indices().into_iter().filter(|&i| percpu::state(i).role() == role).collect()
}

/// Give every online CPU its role: the BSP, then compute cores, and the
/// last CPU is the I/O core exactly when `io_core` (the inference mode
/// streams with an I/O core; it needs two CPUs or more).
pub fn assign_roles(io_core: bool) {
    let cpus = online_indices();
    let n = cpus.len();
    for (i, &c) in cpus.iter().enumerate() {
        let role = if i == 0 {
            Role::Bsp
        } else if io_core && i == n - 1 {
            Role::Io
        } else {
            Role::Compute
        };
        percpu::state(c).set_role(role);
    }
}
