//! AXIOM device drivers: PCI discovery and a polled NVMe driver.
//!
//! Everything here is `no_std` + `alloc` and reaches the hardware only through
//! the small traits in [`hw`] (register access, port I/O, DMA memory, a
//! monotonic clock). The kernel implements them over real MMIO and physical
//! memory; the host unit tests implement them over a software model of an
//! NVMe controller ([`nvme::sim`]), so the same driver code runs in both.
//!
//! `unsafe` lives in [`hw::mmio`] (volatile MMIO and DMA memory access) and
//! in [`nvme::sim`]'s model memory; the rest is safe Rust.

#![no_std]

extern crate alloc;

pub mod hw;
pub mod nvme;
pub mod pci;
