//! `selftest=nvme`: identify the controller, read the whole first namespace
//! through the deep-queue path into rotating buffers, checksum it (CRC32C) and
//! report throughput and how busy the polling core was.
//!
//! Command-line keys: `nvme_qd=N` (commands in flight, default the deepest the
//! queue allows; `max` says so explicitly), `nvme_xfer=BYTES` (per-command transfer cap below MDTS, e.g.
//! 4096 for a Linux-style 4 KiB pattern), `nvme_crc=on|off`.

use alloc::format;
use alloc::string::String;

use axiom_drivers::nvme::{read_sequential, ControllerOptions};
use axiom_engine::crc32c::Crc32c;
use axiom_hw::acpi::Platform;
use axiom_hw::mem::dma;

use axiom_proto::cmdline::{keys, OrMax};
use axiom_proto::json::Truncating;
use axiom_proto::telemetry::events::{Nvme, NvmeRead};
use axiom_proto::telemetry::{Crc32c as Crc, Hex};

use super::{probe, StorageError};
use crate::boot::Context;
use crate::telemetry;

/// An identity string of the controller (model, serial, ...), formatted.
type Text = Truncating<64>;

/// Rotating buffers: one is being checksummed while the others fill.
const SLOTS: usize = 8;
/// Largest rotating buffer.
const MAX_SLOT_BYTES: usize = 8 << 20;

#[derive(Clone, Copy, Debug)]
pub struct Args {
    /// None = deepest (queue entries - 1).
    pub queue_depth: Option<u32>,
    /// None = MDTS.
    pub max_transfer: Option<usize>,
    pub crc: bool,
}

impl Default for Args {
    fn default() -> Self {
        Self { queue_depth: None, max_transfer: None, crc: true }
    }
}

pub fn run(platform: &Platform, args: Args) -> Result<(), StorageError> {
    let mut storage = probe(platform, ControllerOptions::default())?;
    let ctrl = &mut storage.controller;
    let ns = storage.namespace;
    let id = *ctrl.identity();
    let mdts_bytes = ctrl.max_transfer_bytes();
    let (major, minor, ter) = ctrl.version();
    let (model, serial, firmware) = (Text::format(format_args!("{}", id.model)), Text::format(format_args!("{}", id.serial)), Text::format(format_args!("{}", id.firmware)));
    let (pci, version) = (Text::format(format_args!("{}", storage.pci.bdf)), Text::format(format_args!("{major}.{minor}.{ter}")));
    telemetry::emit(&Nvme {
        model: model.as_str().into(),
        serial: serial.as_str().into(),
        firmware: firmware.as_str().into(),
        pci: pci.as_str().into(),
        pci_config: storage.config_access.into(),
        bar0: Hex(storage.bar0),
        version: version.as_str().into(),
        nsid: ns.nsid as u64,
        lba_size: ns.block_size as u64,
        lbas: ns.blocks,
        mdts_bytes: mdts_bytes as u64,
        max_queue_entries: ctrl.capabilities().max_queue_entries as u64,
        page_size: ctrl.page_size() as u64,
    });

    let depth = args.queue_depth.unwrap_or(u32::MAX).clamp(1, storage.max_queue_depth());
    let xfer = args.max_transfer.unwrap_or(mdts_bytes).clamp(ns.block_size as usize, mdts_bytes) / ns.block_size as usize * ns.block_size as usize;
    // Enough buffer that `depth` commands can be in flight while one slot is
    // being checksummed, within MAX_SLOT_BYTES per slot.
    let want = (depth as usize * xfer).div_ceil(SLOTS - 2);
    let slot_bytes = want.clamp(xfer, MAX_SLOT_BYTES) / xfer * xfer;
    let mut qp = storage.create_io_queue_pair(Some(depth), SLOTS as u32, Some(xfer))?;
    let buffer = dma::alloc(slot_bytes * SLOTS, 2 << 20).map_err(|_| StorageError::Map { phys: 0, len: (slot_bytes * SLOTS) as u64 })?.leak();

    let mut crc = Crc32c::new();
    let bytes = ns.bytes();
    let stats = read_sequential(&mut qp, &ns, 0, bytes, buffer, SLOTS, |chunk| {
        if args.crc {
            crc.update(chunk)
        }
    })?;
    let driver_busy = stats.driver_busy_ns as f64 / stats.elapsed_ns.max(1) as f64;
    telemetry::emit(&NvmeRead {
        bytes: stats.bytes,
        crc32c: args.crc.then(|| Crc(crc.finish())),
        mib_per_s: stats.mib_per_s(),
        queue_depth: depth as u64,
        max_in_flight: stats.max_in_flight as u64,
        xfer_bytes: xfer as u64,
        buffer_bytes: (slot_bytes * SLOTS) as u64,
        requests: stats.requests,
        commands: stats.commands,
        doorbells: stats.doorbells,
        elapsed_ms: stats.elapsed_ns as f64 / 1e6,
        busy_fraction: stats.busy_fraction(),
        driver_busy_fraction: driver_busy,
    });
    storage.controller.shutdown()?;
    Ok(())
}

/// The `selftest=nvme` entry: command-line keys → [`run`].
pub fn run_cmdline(ctx: &Context) -> Result<(), String> {
    let cmd = ctx.cmd;
    let queue_depth = match cmd.get(&keys::NVME_QD) {
        OrMax::Max => None,
        OrMax::Value(qd) => Some(qd.clamp(1, u32::MAX as u64) as u32),
    };
    let max_transfer = cmd.get(&keys::NVME_XFER).map(|bytes| bytes as usize);
    let crc = cmd.get(&keys::NVME_CRC) == "on";
    run(ctx.platform, Args { queue_depth, max_transfer, crc }).map_err(|e| format!("{e}"))
}
