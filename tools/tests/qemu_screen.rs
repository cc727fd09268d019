//! QEMU tests of the box's screen and keyboard (issue 11): boot a GRUB ISO
//! from an emulated USB stick with a framebuffer (BIOS: the ISO `axiom iso`
//! writes, its default "chat" entry; UEFI with OVMF: the runner's ISO),
//! then through QEMU's monitor take screendumps and type on the emulated
//! PS/2 keyboard.
//!
//! The screen is checked pixel for pixel, without OCR: the host lays out
//! the text the kernel must have drawn with the kernel's own grid
//! (`axiom_screen::TextGrid`) and renders it with the same font, then
//! compares whole character rows: every human-readable line the kernel
//! printed on serial before `@ready` (row 0 on), the typed prompt line
//! (with a Backspace in the typing), the answer's rows below it, and the
//! status line's fixed prefix. The keyboard is checked by `@prompt`
//! carrying what was typed, followed by an answer; `/quit` typed on the
//! keyboard ends the run.
//!
//! Answers are two tokens (TCG runs SIMD code 100-200x slower than native).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axiom_proto::cmdline::keys;
use axiom_proto::telemetry::events::{Boot as BootEvent, Prompt};
use axiom_screen::{render_row, Cell, Layout, Style, TextGrid, BACKGROUND};
use axiom_tools::infer::{self, KernelArgs};
use axiom_tools::qemu::monitor::{Image, Monitor};
use axiom_tools::qemu::{self, Boot, QemuOptions, RunResult, SerialInput, Verdict};

/// Typed on the keyboard: "Hx", Backspace, "i", Enter: the prompt is "Hi".
const TYPED: &str = "Hx\u{8}i\n";
const PROMPT: &str = "Hi";
/// Sent on the serial line in the UEFI test, before the keyboard types.
const SERIAL_PROMPT: &str = "One, two,";
const TOKENS: u32 = 2;
/// Boot (GRUB, OVMF), model load and a two-token answer under TCG on a
/// busy two-core host; a hang still ends well within the CI's hour.
const TIMEOUT: Duration = Duration::from_secs(900);

static QEMU: Mutex<()> = Mutex::new(());

fn axiom() -> Command {
    Command::new(env!("CARGO_BIN_EXE_axiom"))
}

/// The packed default model: a copy of the image `axiom run` caches, so
/// that QEMU's write lock on this test's disk never collides with another
/// run using the cached file.
fn image() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let cached = infer::cached_image(&axiom_testkit::default_model(), |src, out| {
            let status = axiom().arg("pack").arg(src).arg(out).status()?;
            anyhow::ensure!(status.success(), "axiom pack failed ({status})");
            Ok(())
        })
        .expect("packing the default model");
        let copy = scratch("model.img");
        std::fs::copy(&cached, &copy).expect("copying the packed model");
        copy
    })
}

/// A scratch path beside the kernel build (a real filesystem: QEMU opens
/// disks with O_DIRECT).
fn scratch(name: &str) -> PathBuf {
    let dir = qemu::kernel_target_dir().with_file_name("screen-test");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The screen the kernel must show for the serial lines it printed from
/// its first line on (firmware and GRUB print before it): human lines as
/// they are, `@warning`/`@error` as the screen's alert lines.
fn replay(grid: &mut TextGrid, serial: &[String]) {
    let first = serial.iter().position(|l| l.starts_with("AXIOM kernel ") && l.ends_with(" booting")).unwrap_or(serial.len());
    for line in &serial[first..] {
        if let Some(json) = line.strip_prefix("@warning ").or_else(|| line.strip_prefix("@error ")) {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            let kind = if line.starts_with("@warning") { "warning" } else { "error" };
            grid.finish_line();
            grid.write(&format!("{kind}: {}", v["msg"].as_str().unwrap()), Style::Alert);
            grid.finish_line();
        } else if !line.starts_with('@') {
            grid.write(line, Style::Text);
            grid.write("\n", Style::Text);
        }
    }
}

/// Character row `screen_row` of `img` is exactly `cells` drawn with the font.
fn row_matches(img: &Image, layout: &Layout, screen_row: usize, cells: &[Cell]) -> bool {
    let h = layout.font.cell_height();
    let mut expected = vec![0; layout.width_px * h];
    let fill = cells.first().map_or(BACKGROUND, |c| c.style.colors().1);
    render_row(&layout.font, cells, fill, &mut expected, layout.width_px);
    img.lines(layout.row_y(screen_row), h) == expected.as_slice()
}

/// Text rows `0..=last` of `grid` are rows `first..` of the screen; the
/// first mismatch, if any.
fn compare_rows(img: &Image, layout: &Layout, grid: &TextGrid, last: usize, first: usize) -> Result<(), String> {
    for r in 0..=last {
        if !row_matches(img, layout, first + r, grid.row(r)) {
            return Err(format!("screen row {} is not the glyphs of {:?}", first + r, grid.row_text(r)));
        }
    }
    Ok(())
}

/// The status line starts with exactly `prefix` in the status colours.
fn status_prefix_matches(img: &Image, layout: &Layout, prefix: &str) -> bool {
    let (cw, h) = (layout.font.cell_width(), layout.font.cell_height());
    let cells: Vec<Cell> = prefix.chars().map(|ch| Cell { ch, style: Style::Status }).collect();
    let width = cells.len() * cw;
    let mut expected = vec![0; width * h];
    render_row(&layout.font, &cells, 0, &mut expected, width);
    let y = layout.row_y(layout.rows - 1);
    (0..h).all(|line| img.pixels[(y + line) * img.width..][..width] == expected[line * width..(line + 1) * width])
}

/// Takes screendumps until `check` accepts one (the kernel may still be
/// drawing when the serial line that triggers the check arrives).
fn until_shown(mon: &mut Monitor, dump: &Path, mut check: impl FnMut(&Image) -> Result<(), String>) -> Result<Image, String> {
    let mut last = String::new();
    for _ in 0..20 {
        let img = mon.screendump(dump).map_err(|e| format!("{e:#}"))?;
        match check(&img) {
            Ok(()) => return Ok(img),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(last)
}

/// What one boot found.
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    boot_screen_ok: bool,
    answer_screen_ok: bool,
}

/// Boots `opts` (an ISO with `interactive=1`) and checks the boot screen
/// at `@ready`. With `serial_prompt`, that line goes in on the serial port
/// at `@ready` and [`TYPED`] is typed on the keyboard once the serial
/// prompt's `@prompt` is out (during its answer, so the two sources never
/// mix on the screen); without, [`TYPED`] is typed at `@ready`. At the
/// typed prompt's `@summary` the screen shows it and its answer; when every
/// prompt is answered, `/quit` is typed.
fn chat_on_screen(name: &str, mut opts: QemuOptions, serial_prompt: Option<&str>) -> (RunResult, Findings) {
    let sock = scratch(&format!("{name}.monitor"));
    let dump = scratch(&format!("{name}.ppm"));
    let _ = std::fs::remove_file(&sock);
    opts.monitor = Some(sock.clone());
    opts.disk = Some(image().to_path_buf());
    opts.timeout = TIMEOUT;
    if let Some(p) = serial_prompt {
        opts.serial_input = SerialInput::Bytes(format!("{p}\n").into_bytes());
    }
    let expected_answers = 1 + serial_prompt.is_some() as usize;
    let _serial = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = qemu::build_kernel().expect("kernel builds");
    let mut serial: Vec<String> = Vec::new();
    let mut found = Findings::default();
    let mut monitor: Option<Monitor> = None;
    let mut layout: Option<Layout> = None;
    // The answer being generated: its prompt, text and token count.
    let (mut prompt, mut answer_text, mut answer_tokens, mut summaries) = (String::new(), String::new(), 0usize, 0usize);
    let start = Instant::now();
    println!("--- {name}: {:?}, cmdline {:?}, iso {:?}, serial prompt {serial_prompt:?}", opts.boot, opts.cmdline, opts.iso);
    let result = qemu::run_kernel(&kernel, &opts, &mut |line| {
        println!("{line}");
        serial.push(line.to_string());
        let mut check_boot = false;
        let mut type_prompt = false;
        let mut check_answer = false;
        if let Some(json) = line.strip_prefix("@boot ") {
            let b: BootEvent = serde_json::from_str(json).unwrap();
            layout = b.framebuffer.and_then(|fb| Layout::new(fb.width as usize, fb.height as usize));
            if layout.is_none() {
                found.failures.push(format!("@boot reports no usable framebuffer: {json}"));
            }
        } else if line.starts_with("@ready") {
            check_boot = true;
            type_prompt = serial_prompt.is_none();
        } else if let Some(json) = line.strip_prefix("@prompt ") {
            let p: Prompt = serde_json::from_str(json).unwrap();
            prompt = p.text.into_owned();
            (answer_text, answer_tokens) = (String::new(), 0);
            type_prompt = serial_prompt == Some(prompt.as_str());
        } else if let Some(json) = line.strip_prefix("@token ") {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            answer_text.push_str(v["text"].as_str().unwrap());
            answer_tokens += 1;
        } else if line.starts_with("@summary") {
            summaries += 1;
            check_answer = prompt == PROMPT;
        }
        let quit = line.starts_with("@summary") && summaries == expected_answers;
        if !(check_boot || type_prompt || check_answer || quit) {
            return;
        }
        let Some(layout) = layout else { return };
        let mon = match &mut monitor {
            Some(m) => m,
            None => match Monitor::connect(&sock, Duration::from_secs(10)) {
                Ok(m) => monitor.insert(m),
                Err(e) => return found.failures.push(format!("{e:#}")),
            },
        };
        if check_boot {
            // Everything the kernel printed so far (it prints "> ..." right
            // after @ready: the rows before the cursor are complete).
            let mut grid = TextGrid::new(layout.cols, layout.rows);
            replay(&mut grid, &serial);
            let last = grid.cursor().1.saturating_sub(1);
            match until_shown(mon, &dump, |img| {
                if (img.width, img.height) != (layout.width_px, layout.height_px) {
                    return Err(format!("screendump is {}x{}, @boot said {}x{}", img.width, img.height, layout.width_px, layout.height_px));
                }
                compare_rows(img, &layout, &grid, last, 0)
            }) {
                Ok(_) => found.boot_screen_ok = true,
                Err(e) => found.failures.push(format!("boot screen: {e}")),
            }
        }
        if type_prompt {
            if let Err(e) = mon.type_text(TYPED) {
                found.failures.push(format!("typing the prompt: {e:#}"));
            }
        }
        if check_answer {
            let mut typed = TextGrid::new(layout.cols, 2);
            typed.write(&format!("> {PROMPT}"), Style::User);
            let mut answer = TextGrid::new(layout.cols, layout.rows);
            answer.write(&answer_text, Style::Text);
            let answer_rows = answer.cursor().1;
            let status = format!("AXIOM | {answer_tokens} tokens | ");
            let shown = until_shown(mon, &dump, |img| {
                let row = (0..layout.rows - 1)
                    .find(|&r| row_matches(img, &layout, r, typed.row(0)))
                    .ok_or_else(|| format!("no screen row shows the typed {:?}", typed.row_text(0)))?;
                compare_rows(img, &layout, &answer, answer_rows, row + 1).map_err(|e| format!("answer below the prompt: {e}"))?;
                if !status_prefix_matches(img, &layout, &status) {
                    return Err(format!("the status line does not start with {status:?}"));
                }
                Ok(())
            });
            match shown {
                Ok(_) => found.answer_screen_ok = true,
                Err(e) => found.failures.push(format!("answer screen: {e}")),
            }
        }
        if quit {
            if let Err(e) = mon.type_text("/quit\n") {
                found.failures.push(format!("typing /quit: {e:#}"));
            }
        }
        if !found.failures.is_empty() {
            // End the run now rather than at the timeout.
            let _ = mon.command("quit");
        }
    })
    .expect("QEMU runs");
    println!("--- verdict after {:.1} s: {}", start.elapsed().as_secs_f64(), result.verdict());
    let _ = std::fs::remove_file(&sock);
    (result, found)
}

/// The run answered `prompts` in this order (the typed one carrying what
/// was typed, Backspace applied), showed both screens and ended with the
/// typed `/quit`.
fn assert_chat_on_screen(result: &RunResult, found: &Findings, prompts: &[&str]) {
    assert!(found.failures.is_empty(), "{}", found.failures.join("\n"));
    assert!(!result.timed_out, "the run hit the runner's timeout");
    assert!(found.boot_screen_ok, "the boot screen was never checked (no @ready?)");
    assert!(found.answer_screen_ok, "the answer screen was never checked (no @summary?)");
    let seen: Vec<String> = result.all::<Prompt>().map(|p| p.text.into_owned()).collect();
    assert_eq!(seen, prompts, "@prompt events: the serial line and what was typed on the keyboard");
    let answers = infer::answers(result);
    assert_eq!(answers.len(), prompts.len(), "an answer per prompt, then /quit from the keyboard");
    assert!(answers.iter().all(|a| !a.ids.is_empty() && a.summary.is_some()));
    assert_eq!(result.verdict(), Verdict::Success, "/quit typed on the keyboard ends the run cleanly");
}

/// The USB-stick path of docs/bare-metal.md on BIOS: `axiom iso` (menu
/// with its default "chat" entry) on an emulated USB stick, booted by SeaBIOS.
#[test]
fn box_iso_bios_chat_on_screen_and_keyboard() {
    let iso = scratch("box.iso");
    let out = axiom()
        .args(["iso", "--out"])
        .arg(&iso)
        .args(["--timeout", "1", "--cmdline", &format!("tokens={TOKENS} temp=0 ctx=128")])
        .output()
        .expect("running axiom iso");
    assert!(out.status.success(), "axiom iso failed: {}", String::from_utf8_lossy(&out.stderr));
    let opts = QemuOptions { boot: Boot::IsoBios, iso: Some(iso), usb_stick: true, ..Default::default() };
    let (result, found) = chat_on_screen("bios", opts, None);
    assert_chat_on_screen(&result, &found, &[PROMPT]);
    let prompt = result.first::<Prompt>().unwrap();
    assert!(prompt.chat, "the menu's chat entry wraps prompts in the chat template");
}

/// The same on UEFI (OVMF's GOP framebuffer, the USB stick), with the
/// runner's ISO, and a first prompt from the serial line: both input
/// sources work in one run.
#[test]
fn uefi_chat_on_screen_keyboard_and_serial() {
    let args = KernelArgs::default().with(&keys::INTERACTIVE, true).with(&keys::TOKENS, TOKENS).with(&keys::TEMP, 0.0).with(&keys::CTX, 128u64);
    let opts = QemuOptions { boot: Boot::IsoUefi, cmdline: args.cmdline(), usb_stick: true, ..Default::default() };
    let (result, found) = chat_on_screen("uefi", opts, Some(SERIAL_PROMPT));
    assert_chat_on_screen(&result, &found, &[SERIAL_PROMPT, PROMPT]);
}

/// One self-test boot (no model): quick, for the `console` key.
fn selftest_boot(boot: Boot, cmdline: &str) -> RunResult {
    let _serial = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let kernel = qemu::build_kernel().expect("kernel builds");
    let opts = QemuOptions { boot, cmdline: cmdline.into(), timeout: Duration::from_secs(300), ..Default::default() };
    println!("--- {boot:?}: {cmdline}");
    let r = qemu::run_kernel(&kernel, &opts, &mut |line| println!("{line}")).expect("QEMU runs");
    println!("--- verdict: {}", r.verdict());
    assert!(!r.timed_out, "the run hit the runner's timeout");
    assert_eq!(r.verdict(), Verdict::Success);
    r
}

/// `console=fb`: once the screen is up, the human text goes there only and
/// serial keeps the telemetry; `console=serial` leaves the framebuffer
/// alone; `console=fb` without a framebuffer (Multiboot1 direct boot, no
/// graphics mode) warns and keeps the text on serial.
#[test]
fn console_key_routes_the_human_text() {
    const SELFTEST: &str = "selftest=smp rounds=10";
    let selftest_line = |r: &RunResult| r.lines.iter().any(|l| l.starts_with("running selftest 'smp'"));

    let fb = selftest_boot(Boot::IsoBios, &format!("console=fb {SELFTEST}"));
    assert!(fb.first::<BootEvent>().unwrap().framebuffer.is_some(), "GRUB set a graphics mode");
    assert!(fb.lines.iter().any(|l| l.starts_with("screen: ")), "the screen came up");
    assert!(!selftest_line(&fb), "console=fb: the self-test's human line went to the screen only");

    let serial = selftest_boot(Boot::IsoBios, &format!("console=serial {SELFTEST}"));
    assert!(serial.first::<BootEvent>().unwrap().framebuffer.is_some());
    assert!(!serial.lines.iter().any(|l| l.starts_with("screen: ")), "console=serial: no screen");
    assert!(selftest_line(&serial));

    let direct = selftest_boot(Boot::Direct, &format!("console=fb {SELFTEST}"));
    let warnings: Vec<String> = direct.all::<axiom_proto::telemetry::events::Warning>().map(|w| w.msg.into_owned()).collect();
    assert!(warnings.iter().any(|w| w.starts_with("console=fb: the boot loader gave no framebuffer")), "{warnings:?}");
    assert!(selftest_line(&direct), "without a screen the text stays on serial");
}

/// `axiom iso` checks every menu entry's command line before writing
/// anything: a typo, or a key an entry already sets, is a clear error.
#[test]
fn iso_refuses_a_bad_cmdline() {
    let out_path = scratch("refused.iso");
    let _ = std::fs::remove_file(&out_path);
    for (cmdline, expect) in [("tokns=5", "unknown command-line key 'tokns'"), ("interactive=1", "'interactive' is given more than once")] {
        let out = axiom().args(["iso", "--out"]).arg(&out_path).args(["--cmdline", cmdline]).output().expect("running axiom iso");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmdline}: {stderr}");
        assert!(stderr.contains("menu entry \"chat\"") && stderr.contains(expect), "{cmdline}: {stderr}");
        assert!(!out_path.exists(), "nothing written for {cmdline}");
    }
}
