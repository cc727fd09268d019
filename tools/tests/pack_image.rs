//! `axiom pack`: the packed image is a valid GGUF laid out as the kernel
//! expects (4 KiB-aligned, contiguous extents with correct CRC32C), copies
//! tensors byte for byte with `--type keep`, requantizes bit-identically to
//! llama.cpp's reference (checked with llama.cpp's own Python `gguf` package,
//! which must also load every image), is deterministic and idempotent, and
//! refuses what it cannot convert with a clear message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use axiom_engine::crc32c::crc32c;
use axiom_engine::gguf::Gguf;
use axiom_engine::model::{ModelConfig, ModelLayout};
use axiom_engine::image::{ExtentId, PackedError, PackedLayout};
use axiom_testkit::{default_model, repo_root};

const ALIGN: u64 = 4096;

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("axiom-pack-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn axiom(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_axiom")).args(args).output().expect("cannot run axiom")
}

fn pack(input: &Path, output: &Path, extra: &[&str]) {
    let mut args: Vec<&std::ffi::OsStr> = vec!["pack".as_ref(), input.as_os_str(), output.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let out = axiom(&args);
    assert!(out.status.success(), "pack {extra:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Python with llama.cpp's `gguf` package (installed once into a cached venv).
fn gguf_python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new(repo_root().join("tools/gguf-py.sh")).output().expect("cannot run tools/gguf-py.sh");
        assert!(out.status.success(), "tools/gguf-py.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn pack_check(args: &[&Path]) {
    let mut cmd = Command::new(gguf_python());
    cmd.arg(repo_root().join("tools/tests/pack_check.py"));
    cmd.args(args);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pack_check.py {args:?} failed:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    eprint!("{stdout}");
}

fn u64s(g: &Gguf<'_>, key: &str) -> Vec<u64> {
    let a = g.get_array(key).unwrap_or_else(|| panic!("{key} missing"));
    a.iter().map(|v| v.as_u64().unwrap()).collect()
}

/// Checks the `axiom.*` extent keys against the file's bytes and tensor
/// table; returns (globals, layers) as (offset, size) pairs.
fn check_layout(bytes: &[u8]) -> ((u64, u64), Vec<(u64, u64)>) {
    let g = Gguf::parse(bytes).expect("packed image parses");
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), ALIGN);
    assert_eq!(g.get_u32("axiom.pack.version"), Some(1));
    assert_eq!(g.data_offset() % ALIGN, 0);

    let globals = (g.get_u64("axiom.globals.offset").unwrap(), g.get_u64("axiom.globals.size").unwrap());
    let n = g.get_u32("axiom.layer.count").unwrap() as usize;
    let offsets = u64s(&g, "axiom.layer.offset");
    let sizes = u64s(&g, "axiom.layer.size");
    let crcs = u64s(&g, "axiom.layer.crc32c");
    assert_eq!((offsets.len(), sizes.len(), crcs.len()), (n, n, n));
    let layers: Vec<(u64, u64)> = offsets.iter().copied().zip(sizes.iter().copied()).collect();

    // Globals first, at the data section; then every layer, back to back, to
    // the end of the file; all 4 KiB aligned.
    assert_eq!(globals.0, g.data_offset());
    let mut end = globals.0 + globals.1;
    for (i, &(off, size)) in layers.iter().enumerate() {
        assert_eq!(off, end, "layer {i} does not follow the previous extent");
        assert!(off % ALIGN == 0 && size % ALIGN == 0 && size > 0, "layer {i} extent {off}+{size} not aligned");
        end = off + size;
    }
    assert_eq!(end, bytes.len() as u64, "extents do not end at the end of the file");

    // Checksums.
    let extent = |(off, size): (u64, u64)| &bytes[off as usize..(off + size) as usize];
    assert_eq!(crc32c(extent(globals)), g.get_u32("axiom.globals.crc32c").unwrap(), "globals CRC32C");
    for (i, &l) in layers.iter().enumerate() {
        assert_eq!(crc32c(extent(l)) as u64, crcs[i], "layer {i} CRC32C");
    }

    // Every tensor lies inside its own extent: blk.N.* in layer N, others in
    // the globals.
    for t in g.tensors() {
        let r = g.tensor_range(t);
        assert_eq!(r.start % ALIGN, 0, "{} not aligned", t.name);
        let (off, size) = match t.name.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
            Some((n, _)) => layers[n.parse::<usize>().unwrap()],
            None => globals,
        };
        assert!(off <= r.start && r.end <= off + size, "{} at {r:?} outside its extent {off}+{size}", t.name);
    }

    // The engine's reader of the extent table (what the kernel uses) agrees,
    // from the whole file and from the header alone, and verifies every extent.
    let packed = PackedLayout::from_gguf(&g).expect("extent table validates");
    assert_eq!((packed.globals.offset, packed.globals.size), globals);
    assert_eq!(packed.layers.iter().map(|e| (e.offset, e.size)).collect::<Vec<_>>(), layers);
    let header = Gguf::parse_header(&bytes[..g.data_offset() as usize], bytes.len() as u64).unwrap();
    assert_eq!(PackedLayout::from_gguf(&header).unwrap(), packed);
    packed.verify(ExtentId::Globals, extent(globals)).unwrap();
    for (i, &l) in layers.iter().enumerate() {
        packed.verify(ExtentId::Layer(i), extent(l)).unwrap();
    }
    (globals, layers)
}

#[test]
fn keep_copies_tensors_into_aligned_checksummed_extents() {
    let scratch = Scratch::new("keep");
    let model = default_model();
    let packed = scratch.path("keep.gguf");
    pack(&model, &packed, &[]);
    let bytes = std::fs::read(&packed).unwrap();
    let (globals, layers) = check_layout(&bytes);
    let src_bytes = std::fs::read(&model).unwrap();
    let src = Gguf::parse(&src_bytes).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(layers.len(), 30);

    // Same tensors, same types and shapes, same bytes.
    assert_eq!(g.tensors().len(), src.tensors().len());
    for t in src.tensors() {
        let p = g.tensor(t.name).unwrap_or_else(|| panic!("{} missing", t.name));
        assert_eq!((p.ty, p.dims), (t.ty, t.dims), "{}", t.name);
        assert!(g.tensor_bytes(p).unwrap() == src.tensor_bytes(t).unwrap(), "{} bytes differ", t.name);
    }
    // Same metadata (alignment and the axiom.* keys aside).
    for e in src.metadata() {
        assert_eq!(g.get(e.key), Some(&e.value), "metadata {}", e.key);
    }

    // The engine's own layout of the packed file agrees with the extents.
    let cfg = ModelConfig::from_gguf(&g).unwrap();
    let layout = ModelLayout::from_gguf(&g, &cfg).unwrap();
    assert!(layout.is_compact());
    for (l, &(off, size)) in layout.layers.iter().zip(&layers) {
        assert!(l.extent.start == off && l.extent.end <= off + size);
    }
    assert!(layout.globals.extent.start == globals.0 && layout.globals.extent.end <= globals.0 + globals.1);

    // Corruption is caught and named: a flipped byte inside layer 7, a file
    // longer than the table says, an image that was never packed.
    let table = PackedLayout::from_gguf(&g).unwrap();
    let l7 = table.layers[7];
    let mut corrupt = bytes[l7.offset as usize..l7.end() as usize].to_vec();
    let third = corrupt.len() / 3;
    corrupt[third] ^= 0x10;
    let err = table.verify(ExtentId::Layer(7), &corrupt).unwrap_err();
    assert!(matches!(err, PackedError::Checksum { extent: ExtentId::Layer(7), .. }));
    assert!(err.to_string().starts_with("layer 7: CRC32C mismatch"), "{err}");
    let longer = Gguf::parse_header(&bytes[..g.data_offset() as usize], bytes.len() as u64 + ALIGN).unwrap();
    assert!(matches!(PackedLayout::from_gguf(&longer), Err(PackedError::BadLayout { .. })));
    assert_eq!(PackedLayout::from_gguf(&src), Err(PackedError::NotPacked));

    // Deterministic and idempotent.
    let again = scratch.path("again.gguf");
    pack(&model, &again, &[]);
    assert!(std::fs::read(&again).unwrap() == bytes, "two packs of the same model differ");
    let repacked = scratch.path("repacked.gguf");
    pack(&packed, &repacked, &[]);
    assert!(std::fs::read(&repacked).unwrap() == bytes, "packing a packed image changed it");
}

#[test]
fn requantized_model_matches_llama_cpp_reference_and_loads_in_gguf_py() {
    let scratch = Scratch::new("requant");
    let model = default_model();
    let q4_0 = scratch.path("q4_0.gguf");
    pack(&model, &q4_0, &["--type", "q4_0"]);
    let bytes = std::fs::read(&q4_0).unwrap();
    check_layout(&bytes);
    let g = Gguf::parse(&bytes).unwrap();
    // Matrices became Q4_0; norms stay F32; the embedding (tied output head) is Q8_0.
    assert_eq!(g.tensor("blk.7.ffn_down.weight").unwrap().ty.name(), "q4_0");
    assert_eq!(g.tensor("blk.7.attn_norm.weight").unwrap().ty.name(), "f32");
    assert_eq!(g.tensor("token_embd.weight").unwrap().ty.name(), "q8_0");
    assert_eq!(g.get_u32("general.file_type"), Some(2));
    // Idempotent with the same type.
    let again = scratch.path("q4_0-again.gguf");
    pack(&q4_0, &again, &["--type", "q4_0"]);
    assert!(std::fs::read(&again).unwrap() == bytes, "repacking a q4_0 image with --type q4_0 changed it");

    // (`keep` is checked byte for byte above; loading a second 100 MB image in
    // Python would only cost CI time.)
    pack_check(&[Path::new("check"), &model, &q4_0]);
}

#[test]
fn f32_and_f16_sources_quantize_like_the_reference() {
    let scratch = Scratch::new("synthetic");
    let source = scratch.path("synthetic.gguf");
    pack_check(&[Path::new("synthetic"), &source]);
    let mut outputs = Vec::new();
    for (name, args) in [
        ("q4_0", &["--type", "q4_0"][..]),
        ("q4_1", &["--type", "q4_1"][..]),
        ("q8_0", &["--type", "q8_0"][..]),
        ("q4_1-f16-embd", &["--type", "q4_1", "--embd-type", "f16"][..]),
        ("keep", &[][..]),
    ] {
        let out = scratch.path(&format!("{name}.gguf"));
        pack(&source, &out, args);
        let bytes = std::fs::read(&out).unwrap();
        let (_, layers) = check_layout(&bytes);
        assert_eq!(layers.len(), 2);
        let g = Gguf::parse(&bytes).unwrap();
        // Rows of 20 elements are not whole blocks: kept as they were.
        assert_eq!(g.tensor("blk.0.attn_odd.weight").unwrap().ty.name(), "f32");
        outputs.push(out);
    }
    let mut args: Vec<&Path> = vec![Path::new("check"), &source];
    args.extend(outputs.iter().map(|p| p.as_path()));
    pack_check(&args);
}

/// Every type the engine runs is read: `keep` copies it byte for byte into
/// the aligned, checksummed extents, and `--type q4_0|q4_1|q8_0` requantize
/// it through ggml's dequantization (checked against the `gguf` package's
/// dequantizer and reference quantizers). The tensors are blocks llama.cpp
/// encoded (kernel/engine/testdata/ggml-quants).
#[test]
fn every_supported_type_is_kept_or_requantized() {
    let scratch = Scratch::new("mixed");
    let source = scratch.path("mixed.gguf");
    let fixtures = axiom_testkit::testdata("ggml-quants");
    pack_check(&[Path::new("mixed"), &source, &fixtures]);
    let src_bytes = std::fs::read(&source).unwrap();
    let src = Gguf::parse(&src_bytes).unwrap();
    let names = ["q5_0", "q5_1", "iq4_nl", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "bf16"];
    for n in names {
        assert!(src.tensor(&format!("blk.1.ffn_{n}.weight")).is_some(), "the mixed model lacks {n}");
    }
    let mut outputs = Vec::new();
    for (name, args) in [("keep", &[][..]), ("q4_0", &["--type", "q4_0"][..]), ("q4_1", &["--type", "q4_1"][..]), ("q8_0", &["--type", "q8_0", "--embd-type", "keep"][..])] {
        let out = scratch.path(&format!("{name}.gguf"));
        pack(&source, &out, args);
        let bytes = std::fs::read(&out).unwrap();
        let (_, layers) = check_layout(&bytes);
        assert_eq!(layers.len(), 2);
        let g = Gguf::parse(&bytes).unwrap();
        for n in names {
            let t = g.tensor(&format!("blk.0.ffn_{n}.weight")).unwrap();
            let s = src.tensor(&format!("blk.0.ffn_{n}.weight")).unwrap();
            if name == "keep" {
                assert_eq!(t.ty, s.ty);
                assert!(g.tensor_bytes(t).unwrap() == src.tensor_bytes(s).unwrap(), "{n} bytes differ");
            } else {
                assert_eq!(t.ty.name(), name, "{n} under --type {name}");
            }
        }
        let embd = g.tensor("token_embd.weight").unwrap().ty.name();
        assert_eq!(embd, if matches!(name, "keep" | "q8_0") { "q6_K" } else { "q8_0" });
        outputs.push(out);
    }
    let mut args: Vec<&Path> = vec![Path::new("check"), &source];
    args.extend(outputs.iter().map(|p| p.as_path()));
    pack_check(&args);
}

#[test]
fn refuses_unsupported_and_broken_inputs() {
    let scratch = Scratch::new("refuse");
    let fail = |input: &Path, extra: &[&str], expect: &str| {
        let out_path = scratch.path("out.gguf");
        let mut args: Vec<&std::ffi::OsStr> = vec!["pack".as_ref(), input.as_os_str(), out_path.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let out = axiom(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "pack of {} should fail", input.display());
        assert!(stderr.contains(expect), "expected {expect:?} in: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out_path.exists(), "a failed pack left {}", out_path.display());
        let leftovers: Vec<_> = std::fs::read_dir(&scratch.0).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains("partial")).collect();
        assert!(leftovers.is_empty(), "a failed pack left a partial file");
    };

    let iq2 = scratch.path("iq2_xs.gguf");
    pack_check(&[Path::new("unsupported"), &iq2]);
    fail(&iq2, &[], "has type iq2_xs, which pack cannot read (supported source types: f32, f16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K, iq4_nl, bf16)");

    let model = default_model();
    let head = std::fs::read(&model).unwrap();
    let truncated = scratch.path("truncated.gguf");
    std::fs::write(&truncated, &head[..1 << 20]).unwrap();
    fail(&truncated, &[], "truncated");

    let not_gguf = scratch.path("not.gguf");
    std::fs::write(&not_gguf, b"this is not a model file at all, just text\n").unwrap();
    fail(&not_gguf, &[], "GGUF");

    fail(&model, &["--type", "q5_k"], "unsupported type \"q5_k\"");
    fail(&scratch.path("missing.gguf"), &[], "cannot open");
}

#[test]
fn tokenize_prints_ids_as_json() {
    let model = default_model();
    let run = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["tokenize".as_ref(), "--model".as_ref(), model.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let out = axiom(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(run(&["--text", "The capital of France is"]), "[504,3575,282,4649,314]");
    // Special tokens are parsed by default, and can be turned off.
    assert_eq!(run(&["--text", "<|im_start|>user"]), "[1,4093]");
    assert_ne!(run(&["--text", "<|im_start|>user", "--no-parse-special"]), "[1,4093]");
    let pieces: serde_json::Value = serde_json::from_str(&run(&["--text", "Hi there", "--pieces"])).unwrap();
    assert_eq!(pieces[1]["piece"], " there");
}
