//! Sequential streaming through rotating buffers: keeps the queue pair full
//! while the caller consumes the data strictly in order (e.g. a checksum of a
//! whole namespace, or a model image read front to back).

use super::controller::Namespace;
use super::error::NvmeError;
use super::qpair::{IoQueuePair, ReadBuffer};
use crate::hw::{Clock, Dma, Registers};

/// What a streaming run did and where the polling core's time went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub bytes: u64,
    pub requests: u64,
    pub commands: u64,
    pub doorbells: u64,
    pub max_in_flight: u32,
    pub elapsed_ns: u64,
    /// Time in driver calls that submitted or reaped something.
    pub driver_busy_ns: u64,
    /// Time in the consumer callback.
    pub consume_ns: u64,
    /// Time in polls that found nothing to do (waiting for the device).
    pub idle_ns: u64,
}

impl StreamStats {
    /// Fraction of the elapsed time the polling core did work (driver or consumer).
    pub fn busy_fraction(&self) -> f64 {
        if self.elapsed_ns == 0 {
            return 0.0;
        }
        1.0 - self.idle_ns as f64 / self.elapsed_ns as f64
    }

    pub fn mib_per_s(&self) -> f64 {
        if self.elapsed_ns == 0 {
            return 0.0;
        }
        self.bytes as f64 / (1024.0 * 1024.0) / (self.elapsed_ns as f64 / 1e9)
    }
}

/// Reads `bytes` (a multiple of the block size) from `start_lba` through
/// `buffer`, which is split into `slots` equal chunks used round robin, and
/// hands every chunk to `consume` in order. Requests for chunk k+slots are
/// issued as soon as chunk k has been consumed, so up to `slots` requests
/// (and the queue depth in commands) are in flight. On a read error, the
/// other reads in flight are drained before the error is returned, so the
/// buffer is never written after this returns.
pub fn read_sequential<R: Registers, D: Dma, C: Clock>(
    qp: &mut IoQueuePair<R, D, C>,
    ns: &Namespace,
    start_lba: u64,
    bytes: u64,
    buffer: &mut [u8],
    slots: usize,
    mut consume: impl FnMut(&[u8]),
) -> Result<StreamStats, NvmeError> {
    let bs = ns.block_size as usize;
    assert!(slots > 0 && bytes.is_multiple_of(bs as u64));
    let chunk = (buffer.len() / slots) / bs * bs;
    assert!(chunk > 0, "buffer too small for {slots} slots of at least one block");
    if !qp.is_idle() {
        return Err(NvmeError::Busy { active_requests: qp.active_requests() });
    }
    let end_lba = start_lba + bytes / bs as u64;
    if end_lba > ns.blocks {
        return Err(NvmeError::OutOfRange { nsid: ns.nsid, lba: start_lba, blocks: bytes / bs as u64, namespace_blocks: ns.blocks });
    }
    let chunks = bytes.div_ceil(chunk as u64);
    let before = qp.stats();
    let base = buffer.as_mut_ptr();
    let mut stats = StreamStats::default();
    let mut ready = alloc::vec![false; slots];
    let mut next_submit = 0u64; // next chunk index to request
    let mut next_consume = 0u64; // next chunk index to hand out
    let mut first_error: Option<NvmeError> = None;
    let t_start = qp.clock().now_ns();

    let chunk_len = |k: u64| -> usize { (bytes - k * chunk as u64).min(chunk as u64) as usize };
    while next_consume < chunks {
        let t0 = qp.clock().now_ns();
        let mut did_work = false;
        // Issue every chunk whose slot is free (already consumed).
        while first_error.is_none() && next_submit < chunks && next_submit < next_consume + slots as u64 {
            let slot = (next_submit % slots as u64) as usize;
            let len = chunk_len(next_submit);
            // SAFETY: `buffer` is exclusively borrowed for this whole call;
            // slot `slot` is not read (consumed) until this request completes,
            // and we drain every request before returning.
            let dst = unsafe { ReadBuffer::new(base.add(slot * chunk), len) };
            let lba = start_lba + next_submit * (chunk / bs) as u64;
            if let Err(e) = qp.submit_read(ns, lba, dst, next_submit) {
                qp.drain(|_| {})?;
                return Err(e);
            }
            next_submit += 1;
            did_work = true;
        }
        let delivered = qp.process_completions(0, |c| match c.result {
            Ok(()) => ready[(c.tag % slots as u64) as usize] = true,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        })?;
        let t1 = qp.clock().now_ns();
        if delivered > 0 || did_work {
            stats.driver_busy_ns += t1 - t0;
        } else {
            stats.idle_ns += t1 - t0;
        }
        if let Some(e) = first_error {
            qp.drain(|_| {})?;
            return Err(e);
        }
        // Consume completed chunks in order.
        let mut t = t1;
        while next_consume < chunks && ready[(next_consume % slots as u64) as usize] {
            let slot = (next_consume % slots as u64) as usize;
            ready[slot] = false;
            let len = chunk_len(next_consume);
            consume(&buffer[slot * chunk..slot * chunk + len]);
            next_consume += 1;
            let t2 = qp.clock().now_ns();
            stats.consume_ns += t2 - t;
            t = t2;
        }
    }
    let after = qp.stats();
    stats.elapsed_ns = qp.clock().now_ns() - t_start;
    stats.bytes = bytes;
    stats.requests = after.requests - before.requests;
    stats.commands = after.commands - before.commands;
    stats.doorbells = after.doorbells - before.doorbells;
    stats.max_in_flight = after.max_in_flight;
    Ok(stats)
}
