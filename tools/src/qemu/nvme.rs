//! `--disk FILE`: attach a raw file as the NVMe namespace the kernel's driver
//! reads. The file is opened with O_DIRECT (`cache=none`) and read through
//! io_uring (`aio=io_uring`), so the guest measures the device path and not
//! the host's page cache: a second run is not faster because the first one
//! cached the file. (`aio=native` and `aio=threads` measured the same within
//! noise here, and `native` is used where the host has no io_uring; see
//! docs/nvme.md.) Where the filesystem refuses O_DIRECT
//! (tmpfs), the runner falls back to the page cache and says so.
//! `AXIOM_NVME_AIO=native|threads|io_uring` overrides the AIO engine.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// QEMU's `-drive` options after `file=` for a device-measuring attachment.
pub const DIRECT_CACHE: &str = "cache=none";
pub const DEFAULT_AIO: &str = "io_uring";

/// QEMU arguments that attach `disk` as NVMe namespace 1 of a controller
/// with serial `axiom`.
pub fn nvme_args(disk: &Path) -> Result<Vec<String>> {
    let meta = std::fs::metadata(disk).with_context(|| format!("--disk {}", disk.display()))?;
    if !meta.is_file() {
        bail!("--disk {}: not a regular file", disk.display());
    }
    if meta.len() < 512 {
        bail!("--disk {}: {} bytes is smaller than one 512-byte block", disk.display(), meta.len());
    }
    if meta.len() % 512 != 0 {
        eprintln!(
            "axiom run: note: {} is {} bytes, not a multiple of 512: the namespace ends at the last whole block",
            disk.display(),
            meta.len()
        );
    }
    let cache = if direct_io_works(disk) {
        let aio = std::env::var("AXIOM_NVME_AIO").unwrap_or_else(|_| if io_uring_available() { DEFAULT_AIO } else { "native" }.to_string());
        if !["io_uring", "native", "threads"].contains(&aio.as_str()) {
            bail!("AXIOM_NVME_AIO={aio}: expected io_uring, native or threads");
        }
        format!("{DIRECT_CACHE},aio={aio}")
    } else {
        eprintln!(
            "axiom run: note: {} does not support O_DIRECT (tmpfs?); the NVMe disk goes through the host page cache, so read speeds measure the cache",
            disk.display()
        );
        "cache=writeback".to_string()
    };
    // QEMU's option syntax escapes a comma by doubling it.
    let file = disk.canonicalize().unwrap_or_else(|_| disk.to_path_buf()).display().to_string().replace(',', ",,");
    Ok(vec![
        "-drive".into(),
        format!("file={file},if=none,format=raw,id=nvm,{cache}"),
        "-device".into(),
        "nvme,serial=axiom,drive=nvm".into(),
    ])
}

/// Whether this host kernel lets us create an io_uring (it may be disabled
/// by sysctl or a seccomp policy); QEMU's `aio=io_uring` needs one.
fn io_uring_available() -> bool {
    let mut params = [0u8; 120]; // struct io_uring_params, zeroed
    // SAFETY: io_uring_setup reads and writes only the params block we pass,
    // which is large enough; the returned descriptor is closed right away.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        return false;
    }
    // SAFETY: fd is a descriptor we own.
    unsafe { libc::close(fd as i32) };
    true
}

fn direct_io_works(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attaches_with_direct_io_and_escapes_commas() {
        let dir = std::env::temp_dir().join(format!("axiom-nvme-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a,b.img");
        std::fs::write(&f, vec![0u8; 4096]).unwrap();
        let args = nvme_args(&f).unwrap();
        assert_eq!(args[0], "-drive");
        assert!(args[1].contains("a,,b.img,if=none,format=raw,id=nvm,"), "{}", args[1]);
        assert_eq!(args[2..], ["-device".to_string(), "nvme,serial=axiom,drive=nvm".to_string()]);
        if direct_io_works(&f) && std::env::var("AXIOM_NVME_AIO").is_err() {
            let aio = if io_uring_available() { "io_uring" } else { "native" };
            assert!(args[1].ends_with(&format!("cache=none,aio={aio}")), "{}", args[1]);
        }
        assert!(nvme_args(&dir.join("missing.img")).is_err());
        std::fs::write(&f, [0u8; 100]).unwrap();
        assert!(nvme_args(&f).unwrap_err().to_string().contains("smaller than one 512-byte block"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
