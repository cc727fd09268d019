//! The real driver against the software controller model.

extern crate std;

use std::string::ToString;
use std::vec;
use std::vec::Vec;

use super::prp::{self, ListArea, PrpError};
use super::sim::{SimClock, SimConfig, SimController, SimDma, SimNamespace};
use super::*;
use crate::hw::Registers;

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Rig<'a> {
    sim: &'a SimController<'a>,
    ctrl: Controller<&'a SimController<'a>, &'a SimDma, &'a SimClock>,
}

fn rig<'a>(sim: &'a SimController<'a>, dma: &'a SimDma, clock: &'a SimClock) -> Rig<'a> {
    let ctrl = Controller::init(sim, dma, clock, ControllerOptions::default()).expect("controller init");
    Rig { sim, ctrl }
}

fn ns_of(bytes: usize, shift: u8, seed: u64) -> SimNamespace {
    SimNamespace { block_shift: shift, data: pattern(bytes, seed) }
}

/// A destination buffer mapped into the fake physical space.
fn dma_buffer(dma: &SimDma, len: usize, scattered: bool) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    if scattered {
        dma.map_scattered(&mut buf);
    } else {
        dma.map_contiguous(&mut buf);
    }
    buf
}

fn read_buffer(buf: &mut [u8]) -> ReadBuffer {
    // SAFETY: test buffers outlive the queue pair's use of them, and each
    // test waits for completions before reading the bytes.
    unsafe { ReadBuffer::new(buf.as_mut_ptr(), buf.len()) }
}

// ---------------------------------------------------------------- encoding

#[test]
fn status_field_round_trips_and_names_codes() {
    let s = Status { sct: 2, sc: 0x81, crd: 1, more: true, dnr: true };
    assert_eq!(Status::from_field(s.to_field()), s);
    assert_eq!(s.code_name(), "Unrecovered Read Error");
    let text = s.to_string();
    assert!(text.contains("Media and Data Integrity Error") && text.contains("SC 0x81") && text.contains("do not retry"), "{text}");
    assert_eq!(Status::new(0, 0x80).code_name(), "LBA Out of Range");
    assert_eq!(Status::new(1, 0x02).code_name(), "Invalid Queue Size");
    assert_eq!(Status::new(0, 0x7F).code_name(), "unknown status code");
    // Completion DW3 layout: CID 15:0, phase 16, status 31:17.
    let c = Completion::new(7, 3, 1, 0xBEEF, true, Status::new(0, 0x80));
    assert_eq!(c.dw[3], 0xBEEF | 1 << 16 | 0x80 << 17);
    assert_eq!((c.cid(), c.phase(), c.sq_head(), c.sq_id(), c.result()), (0xBEEF, true, 3, 1, 7));
    assert_eq!(c.status(), Status::new(0, 0x80));
}

#[test]
fn command_dwords_follow_the_spec() {
    let r = Command::read(0x1234, 1, 0x1_2345_6789, 256, 0xAAAA_0000, 0xBBBB_B000);
    assert_eq!(r.dw[0], 0x02 | 0x1234 << 16);
    assert_eq!(r.dw[1], 1);
    assert_eq!((r.dw[6], r.dw[7], r.dw[8], r.dw[9]), (0xAAAA_0000, 0, 0xBBBB_B000, 0));
    assert_eq!((r.dw[10], r.dw[11], r.dw[12]), (0x2345_6789, 1, 255));
    assert_eq!(r.lba_range(), (0x1_2345_6789, 256));
    let cq = Command::create_io_cq(3, 1, 1024, 0x10_0000);
    assert_eq!((cq.opcode(), cq.dw[10], cq.dw[11], cq.prp1()), (0x05, 1 | 1023 << 16, 0b01, 0x10_0000));
    let sq = Command::create_io_sq(4, 1, 1024, 0x20_0000, 1);
    assert_eq!((sq.opcode(), sq.dw[10], sq.dw[11]), (0x01, 1 | 1023 << 16, 1 | 0b10 << 1 | 1 << 16));
    let id = Command::identify(5, 0x01, 0, 0x30_0000);
    assert_eq!((id.opcode(), id.dw[10], id.prp1(), id.prp2()), (0x06, 1, 0x30_0000, 0));
    let nq = Command::set_number_of_queues(6, 1, 1);
    assert_eq!((nq.opcode(), nq.dw[10], nq.dw[11]), (0x09, 0x07, 0));
    assert_eq!(regs::cc_enable(4096), 0x0046_0001);
    assert_eq!(regs::cc_enable(8192) >> 7 & 0xF, 1);
    assert_eq!(regs::aqa(32, 16), 31 | 15 << 16);
    let cap = regs::Capabilities::decode(0x0000_0020_3C03_07FF | 2 << 32 | 1 << 48);
    assert_eq!(cap.max_queue_entries, 2048);
    assert_eq!(cap.ready_timeout_ms, 0x3C * 500);
    assert_eq!(cap.doorbell_stride, 16);
    assert_eq!((cap.sq_tail_doorbell(1), cap.cq_head_doorbell(1)), (0x1020, 0x1030));
    assert_eq!(cap.min_page_size, 8192);
    assert!(cap.nvm_command_set);
}

#[test]
fn identify_parsing() {
    let mut page = [0u8; 4096];
    page[4..24].copy_from_slice(b"  SER123            ");
    page[24..64].copy_from_slice(b"QEMU NVMe Ctrl                          ");
    page[77] = 5;
    page[512] = 0x66;
    page[513] = 0x44;
    let id = ControllerIdentity::parse(&page);
    assert_eq!(id.serial.to_string(), "SER123");
    assert_eq!(id.model.to_string(), "QEMU NVMe Ctrl");
    assert_eq!(id.mdts_bytes(4096), Some(128 << 10));
    assert_eq!((id.sqes, id.cqes), ((6, 6), (4, 4)));
    let mut ns = [0u8; 4096];
    ns[0..8].copy_from_slice(&1000u64.to_le_bytes());
    ns[26] = 0x21; // format index 1 + upper bits (1 << 4 from bits 6:5) = 17
    ns[128 + 17 * 4..128 + 17 * 4 + 4].copy_from_slice(&(12u32 << 16 | 8).to_le_bytes());
    let n = NamespaceIdentity::parse(&ns);
    assert_eq!((n.size_blocks, n.lba_format_index, n.lba_format.data_shift, n.lba_format.metadata_bytes), (1000, 17, 12, 8));
}

// ---------------------------------------------------------------- PRPs

fn identity_translate(v: usize) -> Option<u64> {
    Some(v as u64 + 0x1000_0000)
}

type PrpBuild = (Result<(u64, u64), PrpError>, Vec<(usize, u64)>);

fn build_prps(virt: usize, len: usize, page: usize, area_pages: usize) -> PrpBuild {
    let mut writes = Vec::new();
    let area = ListArea { phys: 0x9000_0000, pages: area_pages };
    let r = prp::build(virt, len, page, &identity_translate, area, |off, e| writes.push((off, e)));
    (r, writes)
}

#[test]
fn prp_single_and_double_page() {
    let (r, w) = build_prps(0x10_0200, 512, 4096, 1);
    assert_eq!(r, Ok((0x1010_0200, 0)));
    assert!(w.is_empty());
    // Crossing one page boundary: PRP2 is the second page itself.
    let (r, w) = build_prps(0x10_0200, 4096, 4096, 1);
    assert_eq!(r, Ok((0x1010_0200, 0x1010_1000)));
    assert!(w.is_empty());
    let (r, _) = build_prps(0x10_0000, 8192, 4096, 1);
    assert_eq!(r, Ok((0x1010_0000, 0x1010_1000)));
}

#[test]
fn prp_list_for_many_pages_with_offset() {
    // 5 pages of data starting 0x200 into a page touch 6 pages: PRP1 + 5 list entries.
    let (r, w) = build_prps(0x10_0200, 5 * 4096, 4096, 1);
    assert_eq!(r, Ok((0x1010_0200, 0x9000_0000)));
    let expect: Vec<(usize, u64)> = (1..6).map(|i| ((i - 1) * 8, 0x1010_0000 + i as u64 * 4096)).collect();
    assert_eq!(w, expect);
}

#[test]
fn prp_list_chains_across_list_pages() {
    // 600 pages: 599 list entries > 512 per page: the 512th slot chains.
    let len = 600 * 4096;
    assert_eq!(prp::list_pages_for(599, 4096), 2);
    assert_eq!(prp::list_pages_for(512, 4096), 1);
    assert_eq!(prp::list_pages_for(513, 4096), 2);
    assert_eq!(prp::list_pages_for(1023, 4096), 2);
    assert_eq!(prp::list_pages_for(1024, 4096), 3);
    let (r, w) = build_prps(0x100_0000, len, 4096, 2);
    assert_eq!(r, Ok((0x1100_0000, 0x9000_0000)));
    assert_eq!(w.len(), 600);
    assert_eq!(w[510], (510 * 8, 0x1100_0000 + 511 * 4096));
    assert_eq!(w[511], (511 * 8, 0x9000_1000), "last slot of the first list page points to the next list page");
    assert_eq!(w[512], (4096, 0x1100_0000 + 512 * 4096));
    assert_eq!(w[599], (4096 + 87 * 8, 0x1100_0000 + 599 * 4096));
    let (r, _) = build_prps(0x100_0000, len, 4096, 1);
    assert_eq!(r, Err(PrpError::ListTooSmall { needed_pages: 2, reserved_pages: 1 }));
}

#[test]
fn prp_errors_for_bad_buffers() {
    assert_eq!(build_prps(0x10_0002, 512, 4096, 1).0, Err(PrpError::Misaligned { virt: 0x10_0002 }));
    let none = |_v: usize| None;
    let r = prp::build(0x10_0000, 512, 4096, &none, ListArea { phys: 0, pages: 1 }, |_, _| {});
    assert_eq!(r, Err(PrpError::Unmapped { virt: 0x10_0000 }));
    // 8 KiB controller pages over 4 KiB host pages that are not contiguous.
    let scattered = |v: usize| Some(((v / 4096) as u64 * 3 * 4096) + (v % 4096) as u64);
    let r = prp::build(0, 8192, 8192, &scattered, ListArea { phys: 0, pages: 1 }, |_, _| {});
    assert_eq!(r, Err(PrpError::NotContiguous { virt: 4096 }));
}

// ---------------------------------------------------------------- bring-up

#[test]
fn bring_up_identifies_and_configures() {
    let dma = SimDma::new();
    let clock = SimClock::new(1000);
    let sim = SimController::new(&dma, SimConfig { mdts: 5, ..Default::default() }, vec![ns_of(1 << 20, 9, 1)]);
    let mut r = rig(&sim, &dma, &clock);
    let id = *r.ctrl.identity();
    assert_eq!(id.model.to_string(), "AXIOM simulated NVMe");
    assert_eq!(id.serial.to_string(), "SIM0001");
    assert_eq!(r.ctrl.max_transfer_bytes(), 128 << 10);
    assert_eq!(r.ctrl.version(), (1, 4, 0));
    let log = r.sim.log();
    assert_eq!(log.cc_writes.last().copied(), Some(regs::cc_enable(4096)));
    assert_eq!(sim.read32(regs::AQA), regs::aqa(32, 32));
    let ns = r.ctrl.first_namespace().unwrap();
    assert_eq!((ns.nsid, ns.block_size, ns.blocks, ns.max_transfer_bytes), (1, 512, 2048, 128 << 10));
    assert_eq!(r.ctrl.namespace(2), Err(NvmeError::Command { command: CommandInfo { opcode: Opcode::Identify, qid: 0, cid: 4, nsid: 2, lba_range: None }, status: Status::new(0, 0x0B) }));
    r.ctrl.shutdown().unwrap();
}

#[test]
fn bring_up_with_doorbell_stride_and_large_pages() {
    let dma = SimDma::new();
    let clock = SimClock::new(1000);
    let cfg = SimConfig { dstrd: 3, mpsmin: 1, mdts: 3, ..Default::default() };
    let sim = SimController::new(&dma, cfg, vec![ns_of(3 << 20, 12, 2)]);
    let mut r = rig(&sim, &dma, &clock);
    assert_eq!(r.ctrl.page_size(), 8192);
    assert_eq!(r.ctrl.capabilities().doorbell_stride, 32);
    assert_eq!(r.ctrl.max_transfer_bytes(), 64 << 10);
    let ns = r.ctrl.first_namespace().unwrap();
    assert_eq!(ns.block_size, 4096);
    let mut qp = r.ctrl.create_io_queue_pair(QueuePairOptions { entries: 16, queue_depth: 15, ..Default::default() }).unwrap();
    let mut buf = dma_buffer(&dma, 3 << 20, false);
    qp.read(&ns, 0, &mut buf).unwrap();
    assert!(buf == sim_data(&sim_ns_data(3 << 20, 2)));
}

fn sim_ns_data(len: usize, seed: u64) -> Vec<u8> {
    pattern(len, seed)
}

fn sim_data(v: &[u8]) -> Vec<u8> {
    v.to_vec()
}

#[test]
fn never_ready_times_out_by_cap_to() {
    let dma = SimDma::new();
    let clock = SimClock::new(1_000_000); // 1 ms per reading
    let sim = SimController::new(&dma, SimConfig { never_ready: true, timeout_units: 4, ..Default::default() }, vec![]);
    let err = Controller::init(&sim, &dma, &clock, ControllerOptions::default()).err().unwrap();
    match err {
        NvmeError::ReadyTimeout { enable: true, waited_ms } => assert!((2000..2100).contains(&waited_ms), "{waited_ms}"),
        e => panic!("unexpected {e:?}"),
    }
    assert!(err.to_string().contains("did not become ready"));
}

struct Gone;
impl Registers for Gone {
    fn read32(&self, _: usize) -> u32 {
        !0
    }
    fn write32(&self, _: usize, _: u32) {}
}

#[test]
fn absent_device_is_reported() {
    let dma = SimDma::new();
    let clock = SimClock::new(1000);
    let err = Controller::init(&Gone, &dma, &clock, ControllerOptions::default()).err().unwrap();
    assert_eq!(err, NvmeError::DeviceGone);
}

// ---------------------------------------------------------------- reads

/// Reads the whole namespace in `chunk`-byte requests with `qd` commands in
/// flight, returns the bytes and the model's log.
fn read_all(cfg: SimConfig, ns_bytes: usize, shift: u8, qd: u32, entries: u32, chunk: usize, scattered: bool) -> (Vec<u8>, Vec<u8>, super::sim::SimLog, QueuePairStats) {
    let dma = SimDma::new();
    let clock = SimClock::new(100);
    let data = pattern(ns_bytes, 77);
    let sim = SimController::new(&dma, cfg, vec![SimNamespace { block_shift: shift, data: data.clone() }]);
    let mut r = rig(&sim, &dma, &clock);
    let ns = r.ctrl.first_namespace().unwrap();
    let mut qp = r.ctrl.create_io_queue_pair(QueuePairOptions { entries, queue_depth: qd, max_requests: 64, max_transfer_bytes: 0 }).unwrap();
    let total = ns.bytes() as usize;
    let mut out = dma_buffer(&dma, total, scattered);
    let mut next = 0usize;
    let mut done = vec![false; total.div_ceil(chunk)];
    let base = out.as_mut_ptr();
    while done.iter().any(|d| !d) {
        while next < total && qp.free_request_slots() > 0 {
            let len = chunk.min(total - next);
            // SAFETY: `out` outlives the queue pair's use; disjoint chunks.
            let buf = unsafe { ReadBuffer::new(base.add(next), len) };
            qp.submit_read(&ns, (next / ns.block_size as usize) as u64, buf, (next / chunk) as u64).unwrap();
            next += len;
        }
        qp.process_completions(0, |c| {
            c.result.unwrap();
            assert!(!done[c.tag as usize]);
            done[c.tag as usize] = true;
        })
        .unwrap();
    }
    let stats = qp.stats();
    (out, data, sim.log(), stats)
}

#[test]
fn whole_namespace_at_many_depths_and_splits() {
    for &(qd, entries, chunk, scattered) in &[(1, 2, 64 << 10, false), (4, 8, 1 << 20, true), (31, 32, 3 << 20, false), (255, 256, 8192, true)] {
        let ns_bytes = (5 << 20) + 3 * 512;
        let (out, data, log, stats) = read_all(SimConfig { mdts: 5, ..Default::default() }, ns_bytes, 9, qd, entries, chunk, scattered);
        assert!(out == data, "data mismatch at qd {qd}");
        // MDTS splitting: no command above 128 KiB, every block read once, in order per request.
        let mut covered = vec![0u8; ns_bytes / 512];
        for c in &log.io_commands {
            let (slba, n) = c.lba_range();
            assert!(n as usize * 512 <= 128 << 10);
            for b in slba..slba + n as u64 {
                covered[b as usize] += 1;
            }
        }
        assert!(covered.iter().all(|&c| c == 1));
        assert!(stats.max_in_flight <= qd);
        assert_eq!(stats.bytes as usize, ns_bytes);
        assert!(log.cq_wraps > 0 || log.io_commands.len() < entries as usize, "the CQ must have wrapped at qd {qd}");
    }
}

#[test]
fn ring_wraps_many_times_with_phase_flips() {
    // 4-entry rings, 3 in flight: hundreds of wrap-arounds.
    let (out, data, log, stats) = read_all(SimConfig { mdts: 1, ..Default::default() }, 4 << 20, 9, 3, 4, 40 << 10, true);
    assert!(out == data);
    assert_eq!(log.io_commands.len(), (4 << 20) / (8 << 10));
    assert!(log.cq_wraps >= 100, "{}", log.cq_wraps);
    assert_eq!(stats.max_in_flight, 3);
}

#[test]
fn unlimited_mdts_is_capped_and_4k_blocks_work() {
    let (out, data, log, _) = read_all(SimConfig { mdts: 0, ..Default::default() }, 9 << 20, 12, 8, 16, 9 << 20, false);
    assert!(out == data);
    assert!(log.io_commands.iter().all(|c| c.lba_range().1 as usize * 4096 <= controller::UNLIMITED_MDTS_CAP));
    assert_eq!(log.io_commands.len(), 5);
}

#[test]
fn queue_depth_is_respected_and_doorbells_are_batched() {
    let dma = SimDma::new();
    let clock = SimClock::new(100);
    let sim = SimController::new(&dma, SimConfig { hold_completions: true, mdts: 2, ..Default::default() }, vec![ns_of(4 << 20, 9, 3)]);
    let mut r = rig(&sim, &dma, &clock);
    let ns = r.ctrl.first_namespace().unwrap();
    let mut qp = r.ctrl.create_io_queue_pair(QueuePairOptions { entries: 64, queue_depth: 16, max_requests: 8, max_transfer_bytes: 0 }).unwrap();
    let mut buf = dma_buffer(&dma, 4 << 20, true);
    let base = buf.as_mut_ptr();
    let admin_doorbells = sim.log().sq_doorbells;
    for i in 0..8 {
        // SAFETY: disjoint 512 KiB pieces of `buf`, alive until the end.
        let b = unsafe { ReadBuffer::new(base.add(i << 19), 1 << 19) };
        qp.submit_read(&ns, (i as u64) << 10, b, i as u64).unwrap();
    }
    assert_eq!(sim.log().sq_doorbells, admin_doorbells, "submit_read must not ring the doorbell");
    assert_eq!(qp.submit_read(&ns, 0, read_buffer(&mut [0u8; 512]), 99), Err(NvmeError::QueueFull { requests: 8 }));
    qp.flush();
    assert_eq!(sim.log().sq_doorbells, admin_doorbells + 1);
    assert_eq!(sim.log().io_commands.len(), 16, "16 KiB MDTS commands, limited to queue depth 16");
    let mut completed = Vec::new();
    while completed.len() < 8 {
        sim.release_completions(5);
        qp.process_completions(0, |c| {
            c.result.unwrap();
            completed.push(c.tag);
        })
        .unwrap();
        assert!(qp.commands_in_flight() <= 16);
    }
    assert!(sim.log().max_outstanding <= 16);
    assert_eq!(qp.stats().max_in_flight, 16);
    assert!(buf == pattern(4 << 20, 3));
    completed.sort();
    assert_eq!(completed, (0..8).collect::<Vec<u64>>());
    // Lowering the depth takes effect for new submissions.
    qp.set_queue_depth(2);
    sim.config_mut(|c| c.hold_completions = false);
    qp.read(&ns, 0, &mut buf[..1 << 20]).unwrap();
    assert_eq!(qp.queue_depth(), 2);
}

#[test]
fn completions_out_of_order_are_matched_by_command_id() {
    let (out, data, _, _) = read_all(SimConfig { reverse_completions: true, mdts: 2, ..Default::default() }, 2 << 20, 9, 32, 64, 48 << 10, true);
    assert!(out == data);
}

#[test]
fn unaligned_destination_uses_prp_offset() {
    let dma = SimDma::new();
    let clock = SimClock::new(100);
    let sim = SimController::new(&dma, SimConfig::default(), vec![ns_of(1 << 20, 9, 4)]);
    let mut r = rig(&sim, &dma, &clock);
    let ns = r.ctrl.first_namespace().unwrap();
    let mut qp = r.ctrl.create_io_queue_pair(QueuePairOptions::default()).unwrap();
    let mut buf = dma_buffer(&dma, (1 << 20) + 4096, true);
    let off = 4096 - 12;
    qp.read(&ns, 0, &mut buf[off..off + (1 << 20)]).unwrap();
    assert!(buf[off..off + (1 << 20)] == pattern(1 << 20, 4)[..]);
    assert_eq!(qp.read(&ns, 0, &mut buf[2..514]), Err(NvmeError::Buffer { lba: 0, reason: BufferError::Prp(PrpError::Misaligned { virt: buf[2..].as_ptr() as usize }) }));
    assert!(qp.is_idle(), "a refused buffer must not leak its request slot");
}

// ---------------------------------------------------------------- errors

#[test]
fn read_past_namespace_is_refused_before_submission() {
    let dma = SimDma::new();
    let clock = SimClock::new(100);
    let sim = SimController::new(&dma, SimConfig::default(), vec![ns_of(64 << 10, 9, 5)]);
    let mut r = rig(&sim, &dma, &clock);
    let ns = r.ctrl.first_namespace().unwrap();
    let mut qp = r.ctrl.create_io_queue_pair(QueuePairOptions::default()).unwrap();
    let mut buf = dma_buffer(&dma, 8192, false);
    let err = qp.read(&ns, 120, &mut buf).unwrap_err();
    assert_eq!(err, NvmeError::OutOfRange { nsid: 1, lba: 120, blocks: 16, namespace_blocks: 128 });
    assert!(err.to_string().contains("LBAs 120..135"));
    assert_eq!(qp.read(&ns, u64::MAX - 1, &mut buf).unwrap_err(), NvmeError::OutOfRange { nsid: 1, lba: u64::MAX - 1, blocks: 16, namespace_blocks: 128 });
    assert_eq!(qp.read(&ns, 0, &mut buf[..100]).unwrap_err(), NvmeError::Buffer { lba: 0, reason: BufferError::NotBlockMultiple { len: 100, block_size: 512 } });
    assert!(sim.log().io_commands.is_empty());
    qp.read(&ns, 112, &mut buf).unwrap();
}

#[test]
fn command_error_names_command_lba_range_and_status() {
    let dma = SimDma::new();
    let clock = SimClock::new(100);
    let bad = Status { dnr: true, ..Status::new(2, 0x81) };
    let cfg = SimConfig { mdts: 1, fail_lbas: Some((100, 100, bad)), ..Default::default() };
    let sim = SimController::new(&dma, cfg, vec![ns_of(1 << 20, 9, 6)]);
    let mut r = rig(&sim, &dma, &clock);
    let ns = r.ctrl.first_namespace().unwrap();
    let mut qp = r.ctrl.create_io_queue_pair(QueuePairOptions::default()).unwrap();
    let mut a = dma_buffer(&dma, 128 << 10, true);
    let mut b = dma_buffer(&dma, 128 << 10, true);
    qp.submit_read(&ns, 0, read_buffer(&mut a), 1).unwrap();
    qp.submit_read(&ns, 256, read_buffer(&mut b), 2).unwrap();
    let mut results = Vec::new();
    qp.drain(|c| results.push((c.tag, c.result))).unwrap();
    results.sort_by_key(|r| r.0);
    let err = results[0].1.unwrap_err();
    // The failing 8 KiB command covers LBAs 96..111.
    assert_eq!(err, NvmeError::Command { command: CommandInfo { opcode: Opcode::Read, qid: 1, cid: err_cid(&err), nsid: 1, lba_range: Some((96, 16)) }, status: bad });
    let text = err.to_string();
    assert!(text.contains("Read") && text.contains("LBAs 96..111") && text.contains("Unrecovered Read Error") && text.contains("SCT 0x2"), "{text}");
    assert_eq!(results[1], (2, Ok(())));
    let want = &pattern(1 << 20, 6)[256 * 512..384 * 512];
    assert_eq!(b.iter().zip(want).position(|(x, y)| x != y), None);
    // The queue pair stays usable after a command error.
    qp.read(&ns, 512, &mut a).unwrap();
}

fn err_cid(e: &NvmeError) -> u16 {
    match e {
        NvmeError::Command { command, .. } => command.cid,
        _ => panic!("{e:?}"),
    }
}

#[test]
fn controller_fatal_status_stops_the_queue_pair() {
    let dma = SimDma::new();
    let clock = SimClock::new(50_000);
    let cfg = SimConfig { mdts: 1, fatal_after_io_commands: Some(5), ..Default::default() };
    let sim = SimController::new(&dma, cfg, vec![ns_of(1 << 20, 9, 7)]);
    let mut r = rig(&sim, &dma, &clock);
    let ns = r.ctrl.first_namespace().unwrap();
    let mut qp = r.ctrl.create_io_queue_pair(QueuePairOptions::default()).unwrap();
    let mut buf = dma_buffer(&dma, 1 << 20, false);
    let err = qp.read(&ns, 0, &mut buf).unwrap_err();
    assert!(matches!(err, NvmeError::ControllerFatal { during: "I/O", .. }), "{err:?}");
    assert!(err.to_string().contains("CSTS.CFS"));
    assert_eq!(sim.read32(regs::CC) & 1, 0, "controller disabled after a fatal error");
    assert_eq!(qp.read(&ns, 0, &mut buf[..512]), Err(NvmeError::Failed));
    assert_eq!(qp.failure(), Some(err));
}

#[test]
fn lost_command_times_out_with_its_lba_range() {
    let dma = SimDma::new();
    let clock = SimClock::new(1000);
    let sim = SimController::new(&dma, SimConfig { lose_io_commands: true, ..Default::default() }, vec![ns_of(1 << 20, 9, 8)]);
    let mut r = rig(&sim, &dma, &clock);
    let ns = r.ctrl.first_namespace().unwrap();
    let mut qp = r.ctrl.create_io_queue_pair(QueuePairOptions::default()).unwrap();
    let mut buf = dma_buffer(&dma, 4096, false);
    clock.step_ns.set(5_000_000);
    let err = qp.read(&ns, 40, &mut buf).unwrap_err();
    match err {
        NvmeError::Timeout { command, waited_ms } => {
            assert_eq!(command.lba_range, Some((40, 8)));
            assert!(waited_ms > 10_000 && waited_ms < 10_100, "{waited_ms}");
        }
        e => panic!("{e:?}"),
    }
    assert!(err.to_string().contains("timed out") && err.to_string().contains("LBAs 40..47"));
    assert_eq!(sim.read32(regs::CC) & 1, 0);
}

#[test]
fn unknown_command_id_is_fatal() {
    let dma = SimDma::new();
    let clock = SimClock::new(1000);
    let sim = SimController::new(&dma, SimConfig::default(), vec![ns_of(1 << 20, 9, 9)]);
    let mut r = rig(&sim, &dma, &clock);
    let ns = r.ctrl.first_namespace().unwrap();
    let mut qp = r.ctrl.create_io_queue_pair(QueuePairOptions::default()).unwrap();
    sim.config_mut(|c| c.bogus_cid = true);
    let mut buf = dma_buffer(&dma, 4096, false);
    let err = qp.read(&ns, 0, &mut buf).unwrap_err();
    assert!(matches!(err, NvmeError::UnexpectedCompletion { qid: 1, .. }), "{err:?}");
}

#[test]
fn too_many_queue_pairs_and_bad_queue_sizes_are_errors() {
    let dma = SimDma::new();
    let clock = SimClock::new(1000);
    let sim = SimController::new(&dma, SimConfig { io_queue_pairs: 1, mqes: 63, ..Default::default() }, vec![ns_of(1 << 20, 9, 9)]);
    let mut r = rig(&sim, &dma, &clock);
    let qp = r.ctrl.create_io_queue_pair(QueuePairOptions { entries: 4096, queue_depth: 4096, ..Default::default() }).unwrap();
    assert_eq!(qp.max_queue_depth(), 63, "entries capped by CAP.MQES, depth by entries - 1");
    let allocated = dma.allocated.get();
    assert!(matches!(r.ctrl.create_io_queue_pair(QueuePairOptions::default()), Err(NvmeError::Unsupported { .. })));
    assert_eq!(dma.allocated.get(), allocated, "a refused queue pair allocates no DMA memory");
}

// ---------------------------------------------------------------- streaming

#[test]
fn sequential_stream_consumes_in_order_with_rotating_buffers() {
    let dma = SimDma::new();
    let clock = SimClock::new(100);
    // 3 MiB + 7 blocks: the last chunk is short.
    let len = (3 << 20) + 7 * 512;
    let sim = SimController::new(&dma, SimConfig { mdts: 3, reverse_completions: true, ..Default::default() }, vec![ns_of(len, 9, 11)]);
    let mut r = rig(&sim, &dma, &clock);
    let ns = r.ctrl.first_namespace().unwrap();
    let mut qp = r.ctrl.create_io_queue_pair(QueuePairOptions { entries: 64, queue_depth: 63, max_requests: 8, max_transfer_bytes: 0 }).unwrap();
    let mut buf = dma_buffer(&dma, 4 * (200 << 10), true);
    let mut seen = Vec::new();
    let stats = read_sequential(&mut qp, &ns, 0, ns.bytes(), &mut buf, 4, |chunk| seen.extend_from_slice(chunk)).unwrap();
    assert!(seen == pattern(len, 11));
    assert_eq!(stats.bytes, len as u64);
    assert_eq!(stats.requests, (len as u64).div_ceil(200 << 10));
    assert!(stats.max_in_flight > 4, "several MDTS commands per request in flight");
    assert!(stats.elapsed_ns >= stats.driver_busy_ns + stats.consume_ns + stats.idle_ns - 1000);
    assert!(qp.is_idle());
}

#[test]
fn sequential_stream_error_drains_and_names_the_lbas() {
    let dma = SimDma::new();
    let clock = SimClock::new(100);
    let cfg = SimConfig { mdts: 3, fail_lbas: Some((3000, 3000, Status::new(2, 0x81))), ..Default::default() };
    let sim = SimController::new(&dma, cfg, vec![ns_of(4 << 20, 9, 12)]);
    let mut r = rig(&sim, &dma, &clock);
    let ns = r.ctrl.first_namespace().unwrap();
    let mut qp = r.ctrl.create_io_queue_pair(QueuePairOptions::default()).unwrap();
    let mut buf = dma_buffer(&dma, 1 << 20, false);
    let mut consumed = 0usize;
    let err = read_sequential(&mut qp, &ns, 0, ns.bytes(), &mut buf, 4, |c| consumed += c.len()).unwrap_err();
    assert!(err.to_string().contains("LBAs 2944..3007"), "{err}");
    assert!(consumed <= 3000 * 512);
    assert!(qp.is_idle(), "nothing may still be in flight into the buffer");
    assert_eq!(read_sequential(&mut qp, &ns, 8000, 512 * 200, &mut buf, 4, |_| {}).unwrap_err(), NvmeError::OutOfRange { nsid: 1, lba: 8000, blocks: 200, namespace_blocks: 8192 });
}
