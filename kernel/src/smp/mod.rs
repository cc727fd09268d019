//! Symmetric multiprocessing: the CPU list, LAPICs, AP start-up, per-CPU
//! data, CPU roles and the SPMD launch with its lockstep barrier.
//!
//! After bring-up every online CPU has a role: index 0 is the BSP; with three
//! or more CPUs the last one is the I/O core; all others compute. Nothing
//! preempts anyone: there is no timer interrupt anywhere.

pub mod launch;
pub mod lapic;
pub mod percpu;
pub mod startup;

use alloc::vec::Vec;

// The SPMD API the inference integration builds on.
#[allow(unused_imports)]
pub use launch::{run_on, ParkMethod, Worker};

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

/// Online CPUs, by index.
pub fn online_cpus() -> impl Iterator<Item = &'static percpu::PerCpu> {
    (0..percpu::registered()).filter_map(percpu::cpu).filter(|c| c.is_online())
}

pub fn online_count() -> usize {
    online_cpus().count()
}

/// Indices of every online CPU (BSP first).
pub fn online_indices() -> Vec<usize> {
    online_cpus().map(|c| c.index()).collect()
}

/// Indices of the online CPUs with `role`.
#[allow(dead_code)] // API for the inference integration (compute / I/O teams)
pub fn cpus_with_role(role: Role) -> Vec<usize> {
    online_cpus().filter(|c| c.role() == role).map(|c| c.index()).collect()
}

/// Give every online CPU its role (see the module docs). `io_core`: the
/// inference mode streams weights, so the last CPU is the I/O core from two
/// CPUs on (one computes, one streams).
pub fn assign_roles(io_core: bool) {
    let cpus: Vec<_> = online_cpus().collect();
    let n = cpus.len();
    for (i, c) in cpus.iter().enumerate() {
        let role = if i == 0 {
            Role::Bsp
        } else if (n >= 3 || (io_core && n == 2)) && i == n - 1 {
            Role::Io
        } else {
            Role::Compute
        };
        c.set_role(role);
    }
}
