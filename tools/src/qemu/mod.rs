//! The QEMU runner: builds the kernel, boots it under TCG, streams its serial
//! output and parses the `@name {json}` telemetry. Used by `axiom run` and by
//! the integration tests (`tools/tests/qemu_*.rs`).
//!
//! Extending it: add a field to [`QemuOptions`] and emit its arguments in
//! [`QemuOptions::qemu_args`] (e.g. a `--disk FILE` for NVMe); `axiom run`
//! maps its own flags onto the struct.

mod build;
mod events;
mod iso;
pub mod monitor;
mod nvme;

pub use build::{build_kernel, kernel_target_dir, workspace_root};
pub use events::{Event, RunResult, Verdict};
pub use iso::{box_menu, build_iso, grub_menu_cfg, write_iso, MenuEntry};
pub use nvme::nvme_args;

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The QEMU binary; override with `AXIOM_QEMU`.
pub fn qemu_binary() -> String {
    std::env::var("AXIOM_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into())
}

/// OVMF firmware for `--uefi` (code, variables template).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// QEMU exit status for the kernel's success write to `isa-debug-exit` (0x10 << 1 | 1).
pub const EXIT_SUCCESS_STATUS: i32 = 33;
/// ... and for its failure write (0x11 << 1 | 1).
pub const EXIT_FAILURE_STATUS: i32 = 35;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Machine {
    Pc,
    Q35,
}

impl Machine {
    pub fn name(self) -> &'static str {
        match self {
            Machine::Pc => "pc",
            Machine::Q35 => "q35",
        }
    }
}

/// How the kernel reaches the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boot {
    /// `-kernel` (Multiboot1, SeaBIOS).
    Direct,
    /// GRUB ISO (Multiboot2) on SeaBIOS.
    IsoBios,
    /// GRUB ISO (Multiboot2) on OVMF.
    IsoUefi,
}

/// Everything one QEMU run needs.
#[derive(Clone, Debug)]
pub struct QemuOptions {
    pub smp: u32,
    /// `-m` value, e.g. "1G".
    pub mem: String,
    pub machine: Machine,
    /// The kernel command line (`key=value ...`).
    pub cmdline: String,
    pub boot: Boot,
    /// `-cpu max,-x2apic` instead of `-cpu max`.
    pub xapic: bool,
    /// `acpi=off` on the machine (no ACPI tables: no MADT).
    pub no_acpi: bool,
    /// A raw disk image attached as an NVMe namespace (controller serial "axiom").
    pub disk: Option<PathBuf>,
    pub timeout: Duration,
    /// Appended after everything else (the CLI's `-- extra qemu args`).
    pub extra_args: Vec<String>,
    /// What QEMU's `-serial stdio` receives (the kernel's COM1 input).
    pub serial_input: SerialInput,
    /// QEMU's monitor on this Unix socket ([`monitor::Monitor`]: keys and
    /// screendumps) instead of none.
    pub monitor: Option<PathBuf>,
    /// For the ISO boots: this ISO (e.g. `axiom iso`'s) instead of one built
    /// from the kernel and `cmdline`.
    pub iso: Option<PathBuf>,
    /// For the ISO boots: attach the ISO as a USB stick (USB mass storage on
    /// an xHCI controller, the first boot device) instead of a CD-ROM: the
    /// path of docs/bare-metal.md.
    pub usb_stick: bool,
}

/// Bytes for the guest's serial port (QEMU's stdin). Nothing is written
/// before the kernel prints `@ready`, so no input depends on what firmware
/// and early boot do with the UART (QEMU hands bytes over during boot).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum SerialInput {
    /// Nothing (stdin is /dev/null).
    #[default]
    None,
    /// These bytes, written at `@ready`; QEMU hands them to the UART as the
    /// guest reads its receiver.
    Bytes(Vec<u8>),
    /// This process's stdin, line by line from `@ready` on (the terminal
    /// stays in cooked mode: local echo and line editing); at its end,
    /// `/quit` is sent.
    Forward,
}

impl Default for QemuOptions {
    fn default() -> Self {
        QemuOptions {
            smp: 2,
            mem: "1G".into(),
            machine: Machine::Pc,
            cmdline: String::new(),
            boot: Boot::Direct,
            xapic: false,
            no_acpi: false,
            disk: None,
            timeout: Duration::from_secs(120),
            extra_args: Vec::new(),
            serial_input: SerialInput::None,
            monitor: None,
            iso: None,
            usb_stick: false,
        }
    }
}

impl QemuOptions {
    /// QEMU's arguments for booting `image` (the ELF for `Direct`, else the ISO).
    /// `scratch` holds per-run files (the UEFI variable store).
    pub fn qemu_args(&self, image: &Path, scratch: &Path) -> Result<Vec<String>> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
        let machine = if self.no_acpi { format!("{},acpi=off", self.machine.name()) } else { self.machine.name().to_string() };
        push(&["-machine", &machine]);
        push(&["-accel", "tcg,thread=multi"]);
        push(&["-cpu", if self.xapic { "max,-x2apic" } else { "max" }]);
        push(&["-smp", &self.smp.to_string()]);
        push(&["-m", &self.mem]);
        let monitor = match &self.monitor {
            Some(path) => format!("unix:{},server=on,wait=off", path.display()),
            None => "none".to_string(),
        };
        push(&["-display", "none", "-serial", "stdio", "-monitor", &monitor, "-no-reboot"]);
        push(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        match self.boot {
            Boot::Direct => {
                push(&["-kernel", &image.display().to_string()]);
                if !self.cmdline.is_empty() {
                    push(&["-append", &self.cmdline]);
                }
            }
            Boot::IsoBios => a.extend(iso_drive(image, self.usb_stick)),
            Boot::IsoUefi => {
                for f in [OVMF_CODE, OVMF_VARS] {
                    if !Path::new(f).exists() {
                        bail!("{f} is missing: install the `ovmf` package (tools/setup.sh does)");
                    }
                }
                let vars = scratch.join("OVMF_VARS.fd");
                std::fs::copy(OVMF_VARS, &vars).with_context(|| format!("copying {OVMF_VARS}"))?;
                push(&["-drive", &format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}")]);
                push(&["-drive", &format!("if=pflash,format=raw,unit=1,file={}", vars.display())]);
                a.extend(iso_drive(image, self.usb_stick));
            }
        }
        if let Some(disk) = &self.disk {
            // O_DIRECT + io_uring so reads measure the device, not the page cache (nvme.rs).
            a.extend(nvme_args(disk)?);
        }
        a.extend(self.extra_args.iter().cloned());
        Ok(a)
    }
}

/// QEMU's arguments attaching `iso` as the boot CD-ROM, or as a USB stick.
fn iso_drive(iso: &Path, usb_stick: bool) -> Vec<String> {
    let iso = iso.display();
    if usb_stick {
        vec![
            "-device".into(),
            "qemu-xhci,id=xhci".into(),
            "-drive".into(),
            format!("if=none,id=stick,format=raw,readonly=on,file={iso}"),
            "-device".into(),
            "usb-storage,bus=xhci.0,drive=stick,bootindex=0".into(),
        ]
    } else {
        vec!["-cdrom".into(), iso.to_string(), "-boot".into(), "d".into()]
    }
}

/// Build what `opts` boots (kernel, and the ISO if asked), run QEMU, feed
/// every serial line to `on_line`, and return the parsed outcome.
pub fn run(opts: &QemuOptions, on_line: &mut dyn FnMut(&str)) -> Result<RunResult> {
    let kernel = build_kernel()?;
    run_kernel(&kernel, opts, on_line)
}

/// As [`run`], with an already built kernel ELF.
pub fn run_kernel(kernel: &Path, opts: &QemuOptions, on_line: &mut dyn FnMut(&str)) -> Result<RunResult> {
    let scratch = tempdir()?;
    let image: PathBuf = match opts.boot {
        Boot::Direct => kernel.to_path_buf(),
        Boot::IsoBios | Boot::IsoUefi => match &opts.iso {
            Some(iso) => iso.clone(),
            None => build_iso(kernel, &opts.cmdline)?,
        },
    };
    let args = opts.qemu_args(&image, &scratch)?;
    let result = spawn_and_watch(&args, opts.timeout, &opts.serial_input, on_line);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "axiom-run-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Copies `from` to `to` line by line, as bytes: a line that is not UTF-8
/// goes to the kernel like any other (its line reader warns and skips it).
/// At the end of `from`, `/quit` is sent; a failed write (QEMU gone) stops.
pub fn forward_lines(from: &mut impl BufRead, to: &mut impl Write) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match from.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => {
                let _ = to.write_all(b"/quit\n").and_then(|_| to.flush());
                return;
            }
            Ok(_) => {
                if line.last() != Some(&b'\n') {
                    line.push(b'\n');
                }
                if to.write_all(&line).and_then(|_| to.flush()).is_err() {
                    return;
                }
            }
        }
    }
}

fn spawn_and_watch(args: &[String], timeout: Duration, input: &SerialInput, on_line: &mut dyn FnMut(&str)) -> Result<RunResult> {
    let qemu = qemu_binary();
    let mut child = Command::new(&qemu)
        .args(args)
        .stdin(if *input == SerialInput::None { Stdio::null() } else { Stdio::piped() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {qemu} (install QEMU >= 10 with tools/setup.sh)"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).replace('\r', "");
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // The writer holds QEMU's stdin open until QEMU exits (a write to a
    // dead QEMU fails with EPIPE and ends it); joined only for `Bytes`, as
    // `Forward` blocks on this process's stdin.
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let mut ready_tx = Some(ready_tx);
    let writer = child.stdin.take().map(|mut stdin| {
        let input = input.clone();
        std::thread::spawn(move || match input {
            // The run ended without @ready: nothing to write.
            _ if ready_rx.recv().is_err() => stdin,
            SerialInput::Bytes(bytes) => {
                let _ = stdin.write_all(&bytes).and_then(|_| stdin.flush());
                stdin
            }
            SerialInput::Forward => {
                forward_lines(&mut std::io::stdin().lock(), &mut stdin);
                stdin
            }
            SerialInput::None => stdin,
        })
    });

    let deadline = Instant::now() + timeout;
    let mut result = RunResult::default();
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        match rx.recv_timeout(left) {
            Ok(line) => {
                if line.starts_with("@ready") {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                on_line(&line);
                result.push_line(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if timed_out {
        let _ = child.kill();
    }
    let status = child.wait().context("waiting for QEMU")?;
    drop(ready_tx); // a writer still waiting for @ready gives up
    let _ = reader.join();
    if let Some(w) = writer {
        if matches!(input, SerialInput::Bytes(_)) {
            drop(w.join());
        }
    }
    // Lines that arrived between the deadline and the kill.
    while let Ok(line) = rx.try_recv() {
        on_line(&line);
        result.push_line(line);
    }
    result.stderr = err_reader.join().unwrap_or_default();
    result.timed_out = timed_out;
    result.timeout = timeout;
    result.exit_status = if timed_out { None } else { status.code() };
    Ok(result)
}

#[cfg(test)]
mod forward_tests {
    use super::forward_lines;

    /// The bug of issue 11: a line that is not UTF-8 ended the input (read_line
    /// into a String fails on it), and every line after it was lost.
    #[test]
    fn lines_that_are_not_utf8_are_forwarded_as_bytes() {
        let mut from: &[u8] = b"\xff\xfeab\nHi\n/reset\nlast line without newline";
        let mut to = Vec::new();
        forward_lines(&mut from, &mut to);
        assert_eq!(to, b"\xff\xfeab\nHi\n/reset\nlast line without newline\n/quit\n");
    }

    #[test]
    fn a_closed_serial_port_stops_forwarding() {
        struct Closed(usize);
        impl std::io::Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                self.0 += 1;
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut from: &[u8] = b"a\nb\n";
        let mut to = Closed(0);
        forward_lines(&mut from, &mut to);
        assert_eq!(to.0, 1, "no write after the first failed one");
        assert_eq!(from, b"b\n", "no line read after it");
    }
}
