//! AXIOM device drivers: PCI discovery and a polled NVMe driver.
//!
//! Everything here is `no_std` + `alloc` and reaches the hardware only through
//! the small traits in [`hw`] (register access, port I/O, DMA memory, a
//! monotonic clock). The kernel implements them over real MMIO and physical
//! memory; the host unit tests implement them over a software model of an
//! NVMe controller ([`nvme::sim`]), so the same driver code runs in both.
//!
//! `unsafe` lives in `hw::mmio` (volatile MMIO and DMA memory access), in
//! the two places that turn a borrowed slice into a DMA destination for the
//! length of one call (`nvme::qpair::IoQueuePair::read`,
//! `nvme::stream::read_sequential`), and in [`nvme::sim`]'s model memory;
//! the rest is safe Rust. Port I/O and physical memory come from the
//! kernel's hardware layer through the [`hw`] traits.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod hw;
pub mod nvme;
pub mod pci;
