//! Where AXIOM's tests find their inputs, in one place:
//!
//! - [`testdata`]: files under `kernel/engine/testdata/` in this repository
//!   (llama.cpp's tokenizer vectors, llama.cpp's outputs for the default
//!   model; their provenance is in that folder's README). Nothing outside
//!   the clone is read, so a fresh `git clone` has everything.
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
/// packed images and Python environments.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("AXIOM_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).expect("HOME is not set (or set AXIOM_CACHE)");
            PathBuf::from(home).join(".cache/axiom")
        }
    }
}

/// A model in the cache, `<cache>/models/<file_name>`, which must exist.
pub fn cached_model(file_name: &str) -> PathBuf {
    let path = cache_dir().join("models").join(file_name);
    assert!(
        path.is_file(),
        "the model {} is missing: download it with tools/fetch-model.sh (./tools/test.sh runs tools/setup.sh, which fetches the default model)",
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
}
