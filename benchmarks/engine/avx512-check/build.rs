// A static, freestanding ELF entered at `ek_main` (no libc, no start files).
fn main() {
    for arg in ["-nostdlib", "-nostartfiles", "-static", "-no-pie", "-Wl,-e,ek_main", "-Wl,--build-id=none"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
