//! Links this crate's integration tests the way some real executables come out of the
//! linker: with a page left unmapped between the read-only segment (which holds the
//! unwind tables) and the code. glibc then describes the executable segment by segment,
//! and a stack walker that expects the unwind tables inside the code's mapping loses
//! every frame of the executable's own code (`tests/gapped_executable.rs`).
//!
//! A 2 MiB maximum page size makes GNU ld and lld place each segment 2 MiB past the end
//! of the one before, whatever the sizes, so the gap is there on every build.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo::rustc-link-arg-tests=-Wl,-z,max-page-size=0x200000");
    }
}
