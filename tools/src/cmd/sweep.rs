//! `axiom sweep`: core-count scaling of the inference kernel under QEMU TCG.
//!
//! For each `--smp` value the kernel boots `--runs` times on the same prompt;
//! every run's `@summary` becomes a CSV row, followed by median/min/max rows
//! per vCPU count, in `benchmarks/results/sweep-<mode>-<UTC time>.csv`. The
//! header comments record the host's logical core count and QEMU's version:
//! with more vCPUs than host cores, QEMU's vCPU threads share cores, so those
//! points are marked `oversubscribed` (in the CSV and on the plot). The PNG
//! beside the CSV (decode tok/s vs vCPUs) is drawn by tools/plot-sweep.py
//! with matplotlib from tools/plot-py.sh's virtualenv.

use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axiom_proto::cmdline::keys as kernel_keys;
use axiom_proto::telemetry::events::{Io, Summary};
use axiom_tools::infer;
use axiom_tools::qemu::{self, QemuOptions, RunResult};

use super::run::{resolve_disk, InferArgs};

/// The prompt of a sweep without `--prompt`.
const DEFAULT_PROMPT: &str = "The capital of France is";

#[derive(clap::Args)]
pub struct Args {
    /// vCPU counts to boot with (the last CPU of each is the I/O core).
    #[arg(long, value_delimiter = ',', default_value = "2,3,4,6,8")]
    smp: Vec<u32>,
    /// Boots per vCPU count.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The inference flags of `axiom run` (--prompt defaults to "The
    /// capital of France is").
    #[command(flatten)]
    infer: InferArgs,
    /// An already packed image to attach as it is.
    #[arg(long, value_name = "IMAGE")]
    disk: Option<PathBuf>,
    /// Guest RAM.
    #[arg(long, default_value = "1G")]
    mem: String,
    /// Seconds per run before it counts as hung.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Extra kernel command-line keys.
    #[arg(long, default_value = "")]
    cmdline: String,
    /// Directory for the CSV and PNG [default: benchmarks/results].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the CSV only.
    #[arg(long)]
    no_plot: bool,
}

/// The figures kept per run, in CSV column order (from `@summary`, and
/// `io_mib_per_s` from `@io`).
const FIELDS: [&str; 14] = [
    "compute_cores",
    "prompt_tokens",
    "generated",
    "ttft_ms",
    "prefill_tok_s",
    "decode_tok_s",
    "decode_ms_median",
    "decode_ms_min",
    "decode_ms_max",
    "stream_wait_frac",
    "attn_frac",
    "ffn_frac",
    "barrier_frac",
    "io_mib_per_s",
];

/// The [`FIELDS`] of one run.
fn values(s: &Summary, io: Option<&Io>) -> [Option<f64>; FIELDS.len()] {
    [
        Some(s.compute_cores as f64),
        Some(s.prompt_tokens as f64),
        Some(s.generated as f64),
        Some(s.ttft_ms),
        Some(s.prefill_tok_s),
        Some(s.decode_tok_s),
        s.decode_ms_median,
        s.decode_ms_min,
        s.decode_ms_max,
        Some(s.stream_wait_frac),
        Some(s.attn_frac),
        Some(s.ffn_frac),
        Some(s.barrier_frac),
        io.map(|io| io.mib_per_s),
    ]
}

struct Row {
    smp: u32,
    run: String,
    status: String,
    mode: String,
    values: Vec<Option<f64>>,
}

pub fn main(args: Args) -> Result<i32> {
    if args.smp.is_empty() || args.smp.iter().any(|&s| s == 0 || s > 255) {
        bail!("--smp takes a list of CPU counts between 1 and 255, e.g. 2,3,4");
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if args.infer.interactive() {
        bail!("a sweep answers one prompt per boot: --interactive does not apply");
    }
    let mut keys = args.infer.keys.clone();
    if keys.get(&kernel_keys::PROMPT).is_none() {
        keys.set(&kernel_keys::PROMPT.spec, DEFAULT_PROMPT)?;
    }
    let cmdline = infer::join_cmdline(&[&keys.cmdline(), &args.cmdline]);
    let disk = resolve_disk(args.infer.model.as_deref(), args.disk.as_deref(), true)?.expect("inference has a disk");
    let host_cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as u32;
    let qemu_version = qemu_version();
    let kernel = qemu::build_kernel()?;
    let streams = keys.get(&kernel_keys::BUDGET).is_some() || keys.get(&kernel_keys::SLOTS).is_some() || keys.get(&kernel_keys::PIN).is_some();
    let planned_mode = if streams { "streaming" } else { "resident" };

    let mut rows = Vec::new();
    let mut failures = 0;
    for &smp in &args.smp {
        for run in 1..=args.runs {
            let opts = QemuOptions {
                smp,
                mem: args.mem.clone(),
                cmdline: cmdline.clone(),
                disk: Some(disk.clone()),
                timeout: Duration::from_secs(args.timeout.max(1)),
                ..Default::default()
            };
            eprint!("sweep: smp {smp} run {run}/{}: ", args.runs);
            let result = qemu::run_kernel(&kernel, &opts, &mut |_| {})?;
            let row = row_of(smp, run, &result);
            match &row.values[FIELDS.iter().position(|f| *f == "decode_tok_s").unwrap()] {
                Some(v) if row.status == "ok" => eprintln!("{v:.3} decode tok/s ({})", row.mode),
                _ => {
                    failures += 1;
                    eprintln!("{}", row.status);
                }
            }
            rows.push(row);
        }
    }

    let mode = rows.iter().find(|r| r.status == "ok").map_or(planned_mode.to_string(), |r| r.mode.clone());
    let out_dir = args.out.clone().unwrap_or_else(|| qemu::workspace_root().join("benchmarks/results"));
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let stamp = utc_stamp(SystemTime::now());
    let csv_path = out_dir.join(format!("sweep-{mode}-{stamp}.csv"));
    let mut csv = String::new();
    let _ = writeln!(csv, "# axiom sweep: the inference kernel's speed under QEMU TCG vs vCPUs (one row per boot, then median/min/max per smp)");
    let _ = writeln!(csv, "# host_cores={host_cores}");
    let _ = writeln!(csv, "# qemu={qemu_version}");
    let _ = writeln!(csv, "# date={stamp}");
    let _ = writeln!(csv, "# commit={}", git_commit());
    let _ = writeln!(
        csv,
        "# kernel={}",
        std::env::var("AXIOM_KERNEL").unwrap_or_else(|_| "built from this checkout".into())
    );
    let _ = writeln!(csv, "# model={}", disk.file_name().and_then(|n| n.to_str()).unwrap_or("?"));
    let _ = writeln!(csv, "# mode={mode}");
    let _ = writeln!(csv, "# runs={}", args.runs);
    let _ = writeln!(csv, "# mem={}", args.mem);
    let _ = writeln!(csv, "# cmdline={cmdline}");
    let _ = writeln!(csv, "# oversubscribed=1 where smp > host_cores: vCPU threads share host cores");
    let _ = writeln!(csv, "smp,run,status,mode,{},oversubscribed", FIELDS.join(","));
    let mut push = |r: &Row| {
        let vals: Vec<String> = r.values.iter().map(|v| v.map_or(String::new(), fmt_num)).collect();
        let _ = writeln!(csv, "{},{},{},{},{},{}", r.smp, r.run, csv_field(&r.status), r.mode, vals.join(","), u8::from(r.smp > host_cores));
    };
    rows.iter().for_each(&mut push);
    for &smp in &args.smp {
        let ok: Vec<&Row> = rows.iter().filter(|r| r.smp == smp && r.status == "ok").collect();
        if ok.is_empty() {
            continue;
        }
        for (name, pick) in [("median", median as fn(&mut [f64]) -> f64), ("min", min), ("max", max)] {
            let values = (0..FIELDS.len())
                .map(|i| {
                    let mut xs: Vec<f64> = ok.iter().filter_map(|r| r.values[i]).collect();
                    (!xs.is_empty()).then(|| pick(&mut xs))
                })
                .collect();
            push(&Row { smp, run: name.into(), status: format!("{} ok runs", ok.len()), mode: ok[0].mode.clone(), values });
        }
    }
    std::fs::write(&csv_path, &csv).with_context(|| format!("writing {}", csv_path.display()))?;
    println!("{csv}");
    eprintln!("sweep: wrote {}", csv_path.display());

    if !args.no_plot {
        let png = csv_path.with_extension("png");
        match plot(&csv_path, &png) {
            Ok(()) => eprintln!("sweep: wrote {}", png.display()),
            Err(e) => eprintln!("sweep: no plot: {e:#}"),
        }
    }
    if failures > 0 {
        eprintln!("sweep: {failures} run(s) failed (see the status column)");
        return Ok(1);
    }
    Ok(0)
}

fn row_of(smp: u32, run: usize, r: &RunResult) -> Row {
    let summary = r.last::<Summary>();
    let io = r.last::<Io>();
    let values = match &summary {
        Some(s) => values(s, io.as_ref()).to_vec(),
        None => vec![None; FIELDS.len()],
    };
    let status = if r.success() && summary.is_some() { "ok".to_string() } else { r.verdict().to_string() };
    let mode = summary.map_or("?".to_string(), |s| s.mode.into_owned());
    Row { smp, run: run.to_string(), status, mode, values }
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn min(xs: &mut [f64]) -> f64 {
    xs.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(xs: &mut [f64]) -> f64 {
    xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Quotes a CSV field that holds a comma, quote or newline.
fn csv_field(s: &str) -> String {
    let s = s.replace('\n', " ");
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn qemu_version() -> String {
    Command::new(qemu::qemu_binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// HEAD, and whether the kernel's sources differ from it.
fn git_commit() -> String {
    let root = qemu::workspace_root();
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(&root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let modified = Command::new("git")
        .args(["diff", "--quiet", "HEAD", "--", "kernel", "drivers"])
        .current_dir(&root)
        .status()
        .is_ok_and(|s| s.code() == Some(1));
    if modified {
        format!("{head} (kernel/drivers modified)")
    } else {
        head
    }
}

/// `YYYY-MM-DDTHHMMSSZ` in UTC.
fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Draws the PNG with tools/plot-sweep.py (matplotlib from tools/plot-py.sh).
fn plot(csv: &Path, png: &Path) -> Result<()> {
    let root = qemu::workspace_root();
    let out = Command::new(root.join("tools/plot-py.sh")).output().context("running tools/plot-py.sh")?;
    if !out.status.success() {
        bail!("tools/plot-py.sh failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let python = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim().to_string();
    let status = Command::new(&python).arg(root.join("tools/plot-sweep.py")).arg(csv).arg(png).status().with_context(|| format!("running {python}"))?;
    if !status.success() {
        bail!("tools/plot-sweep.py failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "1970-01-01T000000Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661)), "2000-02-29T010101Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + Duration::from_secs(1_795_652_000)), "2026-11-26T001320Z");
    }

    #[test]
    fn statistics() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(min(&mut [3.0, 1.0]), 1.0);
        assert_eq!(max(&mut [3.0, 1.0]), 3.0);
        assert_eq!(fmt_num(2.0), "2");
        assert_eq!(fmt_num(0.123456), "0.1235");
        assert_eq!(fmt_num(3766.3), "3766.3");
        assert_eq!(csv_field("kernel failed: a, b"), "\"kernel failed: a, b\"");
    }
}
