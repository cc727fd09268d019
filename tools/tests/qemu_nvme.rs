//! QEMU integration tests of the NVMe driver: `selftest=nvme` reads a file of
//! random bytes attached as an NVMe namespace and must report the same CRC32C
//! the host computes, on `pc` (port I/O PCI config) and `q35` (ECAM), at queue
//! depth 1 and at the deepest setting; without a device it must say so.
//! QEMU runs are serialized (2 host cores).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axiom_proto::telemetry::events::{Nvme, NvmeRead};
use axiom_proto::telemetry::Crc32c;
use axiom_tools::qemu::{self, Machine, QemuOptions, RunResult};

static QEMU: Mutex<()> = Mutex::new(());

/// 37 MiB + 512 bytes: a multiple of the 512-byte LBA, of nothing nicer.
const IMAGE_BYTES: usize = (37 << 20) + 512;

struct Image {
    path: PathBuf,
    crc: u32,
}

/// Random (seeded, so reruns reuse the file) bytes and their CRC32C.
fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut data = vec![0u8; IMAGE_BYTES];
        for chunk in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let dir = qemu::kernel_target_dir().with_file_name("nvme-test");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("random-{IMAGE_BYTES}.img"));
        if std::fs::read(&path).map(|d| d != data).unwrap_or(true) {
            std::fs::write(&path, &data).unwrap();
        }
        Image { path, crc: axiom_engine::crc32c::crc32c(&data) }
    })
}

fn boot(machine: Machine, cmdline: &str, disk: Option<&Path>) -> RunResult {
    let _guard = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let opts = QemuOptions {
        machine,
        smp: 2,
        cmdline: cmdline.to_string(),
        disk: disk.map(Path::to_path_buf),
        timeout: Duration::from_secs(300),
        ..Default::default()
    };
    let mut log = String::new();
    let r = qemu::run(&opts, &mut |l| {
        log.push_str(l);
        log.push('\n');
    })
    .expect("running QEMU");
    if !r.success() && disk.is_some() {
        panic!("kernel run failed on {machine:?} with `{cmdline}`:\n{log}\nstderr:\n{}", r.stderr);
    }
    r
}

/// Checks the identity, the PCI configuration mechanism (q35: ECAM from
/// ACPI's MCFG; pc has no MCFG: the ports) and the checksum; returns the
/// @nvme_read event.
fn check_read(r: &RunResult, machine: Machine, expect_depth: u64) -> NvmeRead {
    let img = image();
    let id = r.first::<Nvme>().expect("@nvme event");
    let config = if machine == Machine::Q35 { "ecam" } else { "ports" };
    assert_eq!(id.pci_config, config, "{machine:?} reaches PCI configuration space through {config}");
    assert_eq!(id.serial, "axiom");
    assert_eq!(id.lba_size, 512);
    assert_eq!(id.lbas, (IMAGE_BYTES / 512) as u64);
    assert!(id.mdts_bytes >= 4096);
    let read = r.first::<NvmeRead>().expect("@nvme_read event");
    assert_eq!(read.bytes, IMAGE_BYTES as u64);
    assert_eq!(read.crc32c, Some(Crc32c(img.crc)), "CRC32C of the namespace differs from the host's");
    assert_eq!(read.queue_depth, expect_depth);
    assert!(read.max_in_flight <= expect_depth);
    read
}

#[test]
fn pc_queue_depth_1() {
    let r = boot(Machine::Pc, "selftest=nvme nvme_qd=1", Some(&image().path));
    let read = check_read(&r, Machine::Pc, 1);
    assert_eq!(read.max_in_flight, 1);
    assert_eq!(read.commands, read.doorbells, "QD1: one doorbell per command");
}

#[test]
fn pc_deepest_queue() {
    let r = boot(Machine::Pc, "selftest=nvme nvme_qd=max", Some(&image().path));
    let read = check_read(&r, Machine::Pc, 1023);
    // Every MDTS-sized command of the image fits in the rotating buffers at once.
    assert!(read.max_in_flight >= 32, "{read:?}");
}

#[test]
fn q35_queue_depth_1() {
    let r = boot(Machine::Q35, "selftest=nvme nvme_qd=1", Some(&image().path));
    check_read(&r, Machine::Q35, 1);
}

#[test]
fn q35_deepest_queue_with_4k_commands() {
    // 4 KiB commands so that the whole queue (1023 commands) is really in flight.
    let r = boot(Machine::Q35, "selftest=nvme nvme_xfer=4K", Some(&image().path));
    let read = check_read(&r, Machine::Q35, 1023);
    assert_eq!(read.max_in_flight, 1023);
    assert_eq!(read.xfer_bytes, 4096);
    assert!(read.doorbells < read.commands / 8, "submissions are batched: {read:?}");
}

#[test]
fn no_device_is_a_clear_failure() {
    let r = boot(Machine::Pc, "selftest=nvme", None);
    assert!(!r.done_ok());
    assert!(!r.timed_out);
    let errors = r.errors();
    assert!(errors.iter().any(|e| e.contains("no NVMe controller found")), "{errors:?}");
}
