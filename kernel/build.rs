//! Kernel-only link flags. They are scoped to this crate's binary
//! (`rustc-link-arg-bins`), so host crates sharing the target triple and the
//! kernel library's host tests link normally.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=build.rs");
    let args = [
        "-nostdlib".to_string(),
        "-static".to_string(),
        "-no-pie".to_string(),
        "-Wl,--build-id=none".to_string(),
        "-Wl,-z,max-page-size=0x1000".to_string(),
        "-Wl,-z,norelro".to_string(),
        "-Wl,--no-dynamic-linker".to_string(),
        format!("-Wl,-T,{dir}/linker.ld"),
    ];
    for arg in args {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
