//! Where AXIOM finds its inputs, in one place (the tests and the `axiom`
//! host tool both use it):
//!
//! - [`testdata`]: files under `kernel/engine/testdata/` in this repository
//!   (llama.cpp's tokenizer vectors, llama.cpp's outputs for the default
//!   model; their provenance is in that folder's README). Nothing outside
//!   the clone is read, so a fresh `git clone` has everything it may ship.
//! - [`fetched_testdata`]: test data whose licence does not let the
//!   repository carry it, which `tools/fetch-testdata.sh` (run by
//!   `tools/setup.sh`) fetches, checked by SHA-256, into
//!   `${AXIOM_CACHE:-~/.cache/axiom}/testdata/`.
//! - [`default_model`], [`cached_model`]: models `tools/fetch-model.sh`
//!   downloads into `${AXIOM_CACHE:-~/.cache/axiom}/models/` (models are
//!   never committed). `./tools/test.sh` runs `tools/setup.sh`, which fetches
//!   the default model first.
//!
//! A missing file stops the test with a message saying what to run: tests
//! that need an input fail without it, they never pass silently.

use std::path::{Path, PathBuf};

/// The default model's file name, as `tools/fetch-model.sh` caches it.
pub const DEFAULT_MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Gemma 3 270M (Q4_K_M), as `tools/fetch-model.sh --model gemma3-270m` caches it.
pub const GEMMA3_MODEL: &str = "gemma-3-270m-q4_k_m.gguf";

/// The name `tools/fetch-model.sh` fetches without `--model`.
const DEFAULT_MODEL_NAME: &str = "smollm2-135m";

/// The models `tools/fetch-model.sh --model NAME` knows: `(NAME, cached file name)`.
pub const KNOWN_MODELS: &[(&str, &str)] = &[(DEFAULT_MODEL_NAME, DEFAULT_MODEL), ("gemma3-270m", GEMMA3_MODEL)];

/// The cached file name of the model `tools/fetch-model.sh --model name` fetches.
pub fn known_model_file(name: &str) -> Option<&'static str> {
    KNOWN_MODELS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The synthetic architectures `benchmarks/engine/goldens/synth-models.sh` writes.
pub const SYNTHETIC_MODELS: &[&str] = &["llama3", "qwen2", "qwen3"];

/// Where a model of the cache lives, `<cache>/models/<file_name>` (which
/// may not exist yet).
pub fn model_path(file_name: &str) -> Result<PathBuf, &'static str> {
    Ok(try_cache_dir()?.join("models").join(file_name))
}

/// The repository's root (this crate lives in `tools/testkit/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The repository's test-data folder, `kernel/engine/testdata/`.
pub fn testdata_dir() -> PathBuf {
    repo_root().join("kernel/engine/testdata")
}

/// `kernel/engine/testdata/<rel>`, which must exist.
pub fn testdata(rel: &str) -> PathBuf {
    let path = testdata_dir().join(rel);
    assert!(
        path.exists(),
        "test data {} is missing: it is part of the repository (kernel/engine/testdata/{rel}); restore it with `git checkout -- kernel/engine/testdata`",
        path.display()
    );
    path
}

/// The text of `kernel/engine/testdata/<rel>`.
pub fn read_testdata_string(rel: &str) -> String {
    let path = testdata(rel);
    String::from_utf8(read(&path)).unwrap_or_else(|e| panic!("{} is not UTF-8: {e}", path.display()))
}

/// `${AXIOM_CACHE:-$HOME/.cache/axiom}`, where the tools cache models,
/// packed images, fetched test data and Python environments; `Err` says why
/// it has no name (neither variable set).
pub fn try_cache_dir() -> Result<PathBuf, &'static str> {
    match std::env::var_os("AXIOM_CACHE") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => match std::env::var_os("HOME") {
            Some(home) if !home.is_empty() => Ok(PathBuf::from(home).join(".cache/axiom")),
            _ => Err("neither AXIOM_CACHE nor HOME is set: set AXIOM_CACHE to the cache directory"),
        },
    }
}

/// [`try_cache_dir`] for tests (a missing name stops the test).
pub fn cache_dir() -> PathBuf {
    try_cache_dir().unwrap_or_else(|why| panic!("{why}"))
}

/// Test data fetched into the cache (see the crate docs), which must exist:
/// `<cache>/testdata/<rel>`.
pub fn fetched_testdata(rel: &str) -> PathBuf {
    let path = cache_dir().join("testdata").join(rel);
    assert!(
        path.is_file(),
        "test data {} is missing: fetch it with tools/fetch-testdata.sh (./tools/test.sh runs tools/setup.sh, which does)",
        path.display()
    );
    path
}

/// A model in the cache, `<cache>/models/<file_name>`, which must exist.
pub fn cached_model(file_name: &str) -> PathBuf {
    let path = model_path(file_name).unwrap_or_else(|why| panic!("{why}"));
    let name = KNOWN_MODELS.iter().find(|(_, f)| *f == file_name).map_or(DEFAULT_MODEL_NAME, |(n, _)| *n);
    assert!(
        path.is_file(),
        "the model {} is missing: download it with tools/fetch-model.sh --model {name} (./tools/test.sh runs tools/setup.sh, which fetches it)",
        path.display()
    );
    path
}

/// The synthetic model `name` (`llama3`, `qwen2`, `qwen3`: tiny F32 models
/// of those architectures, see `kernel/engine/testdata/synthetic/README.md`)
/// in the cache, where `benchmarks/engine/goldens/synth-models.sh` writes it
/// (`tools/setup.sh` runs it), which must exist.
pub fn synthetic_model(name: &str) -> PathBuf {
    assert!(SYNTHETIC_MODELS.contains(&name), "unknown synthetic model {name:?} (known: {SYNTHETIC_MODELS:?})");
    let path = model_path(&format!("synthetic-{name}.gguf")).unwrap_or_else(|why| panic!("{why}"));
    assert!(
        path.is_file(),
        "the synthetic model {} is missing: make it with benchmarks/engine/goldens/synth-models.sh {name} (./tools/test.sh runs tools/setup.sh, which does)",
        path.display()
    );
    path
}

/// The default model (SmolLM2-135M-Instruct, Q4_1) in the cache.
pub fn default_model() -> PathBuf {
    cached_model(DEFAULT_MODEL)
}

/// The default model's bytes.
pub fn default_model_bytes() -> Vec<u8> {
    read(&default_model())
}

/// A file's bytes; the panic names the file.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testdata_is_inside_the_repository() {
        let root = repo_root().canonicalize().unwrap();
        let data = testdata("vocab").canonicalize().unwrap();
        assert!(data.starts_with(&root), "{} is outside {}", data.display(), root.display());
        assert!(root.join("Cargo.toml").is_file() && root.join("tools/fetch-model.sh").is_file(), "{} is not the repository root", root.display());
        assert!(testdata("vocab/LICENSE-llama.cpp").is_file());
    }

    #[test]
    #[should_panic(expected = "kernel/engine/testdata/no-such-file")]
    fn missing_testdata_names_the_path() {
        testdata("no-such-file");
    }

    #[test]
    #[should_panic(expected = "tools/fetch-model.sh")]
    fn missing_model_says_how_to_fetch_it() {
        cached_model("no-such-model.gguf");
    }

    #[test]
    #[should_panic(expected = "tools/fetch-testdata.sh")]
    fn missing_fetched_testdata_says_how_to_fetch_it() {
        fetched_testdata("vocab/no-such-file");
    }

    #[test]
    fn known_models_are_the_fetch_script_names() {
        let script = read_to_string_lossy(&repo_root().join("tools/fetch-model.sh"));
        for (name, file) in KNOWN_MODELS {
            assert!(script.contains(&format!("{name})")) && script.contains(file), "tools/fetch-model.sh lacks {name} -> {file}");
        }
        assert_eq!(known_model_file("gemma3-270m"), Some(GEMMA3_MODEL));
        assert_eq!(known_model_file("nope"), None);
        let synth = read_to_string_lossy(&repo_root().join("benchmarks/engine/goldens/synth-models.sh"));
        for name in SYNTHETIC_MODELS {
            assert!(synth.contains(&format!("[{name}]=")), "synth-models.sh lacks {name}");
        }
    }

    fn read_to_string_lossy(p: &Path) -> String {
        String::from_utf8_lossy(&read(p)).into_owned()
    }

    #[test]
    fn the_cache_is_where_the_scripts_put_it() {
        let dir = try_cache_dir().unwrap();
        match std::env::var_os("AXIOM_CACHE").filter(|d| !d.is_empty()) {
            Some(d) => assert_eq!(dir, PathBuf::from(d)),
            None => assert!(dir.ends_with(".cache/axiom")),
        }
        assert_eq!(model_path("m.gguf").unwrap(), dir.join("models/m.gguf"));
    }
}
