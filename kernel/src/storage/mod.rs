//! Storage: find the NVMe controller on PCI, bring it up with the
//! `axiom-drivers` NVMe driver, and hand out its first namespace and an I/O
//! queue pair. The machine comes from the hardware layer (register
//! mappings, DMA memory, the clock, ACPI's ECAM windows, the PCI
//! configuration ports); the driver logic lives in `drivers/`.

pub mod selftest;

use alloc::boxed::Box;
use core::fmt;

use axiom_drivers::hw::MmioRegion;
use axiom_drivers::nvme::{Controller, ControllerOptions, IoQueuePair, Namespace, NvmeError, QueuePairOptions};
use axiom_drivers::pci::{self, Bar, BarError, ConfigAccess, EcamConfig, PciFunction, PortConfig};
use axiom_hw::acpi::Platform;
use axiom_hw::legacy::pci_config;
use axiom_hw::mem::{self, dma::DeviceDma};
use axiom_hw::time::TscClock;

pub type NvmeController = Controller<MmioRegion, DeviceDma, TscClock>;
/// What the I/O core owns and polls (`Send`: it may move to another core).
pub type NvmeQueuePair = IoQueuePair<MmioRegion, DeviceDma, TscClock>;

/// I/O queue entries asked for (capped by CAP.MQES); the deepest queue depth is one less.
pub const IO_QUEUE_ENTRIES: u32 = 1024;

/// A brought-up controller and the namespace we read from.
pub struct Storage {
    pub pci: PciFunction,
    /// How PCI configuration space was reached: `ecam` (ACPI MCFG) or `ports`.
    pub config_access: &'static str,
    /// Physical address of the register block.
    pub bar0: u64,
    pub controller: NvmeController,
    pub namespace: Namespace,
}

#[derive(Debug)]
pub enum StorageError {
    /// No PCI function of class 01:08:02.
    NoDevice { mechanism: &'static str, functions: usize },
    /// No configuration mechanism: no ECAM window and the ports are taken.
    NoConfigAccess,
    Bar(BarError),
    BarIsIo { bdf: pci::Bdf },
    Map { phys: u64, len: u64 },
    Nvme(NvmeError),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::NoDevice { mechanism, functions } => write!(
                f,
                "no NVMe controller found (no PCI function of class 01:08:02 among {functions} functions, config access via {mechanism}); attach one with `cargo axiom run --disk FILE`"
            ),
            StorageError::NoConfigAccess => write!(f, "no PCI configuration access: no ECAM window and the configuration ports are in use"),
            StorageError::Bar(e) => write!(f, "{e}"),
            StorageError::BarIsIo { bdf } => write!(f, "PCI {bdf}: NVMe BAR0 is an I/O BAR, expected memory"),
            StorageError::Map { phys, len } => write!(f, "cannot map NVMe registers at {phys:#x} ({len} bytes)"),
            StorageError::Nvme(e) => write!(f, "{e}"),
        }
    }
}

impl From<NvmeError> for StorageError {
    fn from(e: NvmeError) -> Self {
        StorageError::Nvme(e)
    }
}

impl Storage {
    /// Deepest queue depth the I/O queue pair can have.
    pub fn max_queue_depth(&self) -> u32 {
        IO_QUEUE_ENTRIES.min(self.controller.capabilities().max_queue_entries) - 1
    }

    /// Creates the I/O queue pair: `queue_depth` commands in flight (None =
    /// deepest), `max_requests` reads accepted at once, commands of at most
    /// `max_transfer` bytes (None = MDTS).
    pub fn create_io_queue_pair(&mut self, queue_depth: Option<u32>, max_requests: u32, max_transfer: Option<usize>) -> Result<NvmeQueuePair, StorageError> {
        let depth = queue_depth.unwrap_or(u32::MAX).clamp(1, self.max_queue_depth());
        let opts = QueuePairOptions { entries: depth + 1, queue_depth: depth, max_requests, max_transfer_bytes: max_transfer.unwrap_or(0) };
        Ok(self.controller.create_io_queue_pair(opts)?)
    }
}

/// PCI configuration access: ECAM when ACPI's MCFG has a window for
/// segment 0 (q35), the legacy ports otherwise (pc).
fn config_access(platform: &Platform) -> Result<(Box<dyn ConfigAccess>, &'static str), StorageError> {
    match &platform.ecam {
        Ok(windows) => {
            if let Some(&window) = windows.iter().find(|w| w.segment == 0) {
                match mem::map_mmio(window.base, window.window_bytes() as usize) {
                    Ok(regs) => return Ok((Box::new(EcamConfig::new(regs, window)), "ECAM (ACPI MCFG)")),
                    Err(e) => crate::println!("nvme: cannot map the ECAM window at {:#x}: {e}", window.base),
                }
            }
        }
        Err(e) => crate::println!("nvme: ignoring ACPI MCFG: {e}"),
    }
    let ports = pci_config::take().ok_or(StorageError::NoConfigAccess)?;
    Ok((Box::new(PortConfig::new(ports)), "port I/O 0xCF8/0xCFC"))
}

/// Finds the first NVMe controller, enables it for polled DMA, resets and
/// identifies it, and identifies its first active namespace.
pub fn probe(platform: &Platform, options: ControllerOptions) -> Result<Storage, StorageError> {
    let (cfg, mechanism) = config_access(platform)?;
    let functions = pci::enumerate(&*cfg);
    let Some(function) = functions.iter().copied().find(|f| f.is_nvme()) else {
        return Err(StorageError::NoDevice { mechanism, functions: functions.len() });
    };
    let bar = pci::read_bar(&*cfg, function.bdf, 0).map_err(StorageError::Bar)?;
    let Bar::Memory { address, size, .. } = bar else {
        return Err(StorageError::BarIsIo { bdf: function.bdf });
    };
    let command = pci::enable_polled_dma(&*cfg, function.bdf);
    crate::println!(
        "nvme: {} {:04x}:{:04x} via {}, BAR0 {:#x} ({} KiB), command {:#06x}",
        function.bdf,
        function.vendor_id,
        function.device_id,
        mechanism,
        address,
        size / 1024,
        command
    );
    let regs = mem::map_mmio(address, size as usize).map_err(|e| {
        crate::println!("nvme: cannot map {address:#x}+{size:#x} uncached: {e}");
        StorageError::Map { phys: address, len: size }
    })?;
    let mut controller = Controller::init(regs, DeviceDma, TscClock, options)?;
    let namespace = controller.first_namespace()?;
    let config_access = if mechanism.starts_with("ECAM") { "ecam" } else { "ports" };
    Ok(Storage { pci: function, config_access, bar0: address, controller, namespace })
}
