//! Sets `cfg(taskscope_dumps)` where tokio's task dumps exist: Linux on x86_64 or aarch64
//! (the targets the probe's symbolizer also reads), built with `--cfg tokio_unstable`.
//! One name for the condition instead of the same `cfg(all(...))` in every file.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(taskscope_dumps)");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let unstable = std::env::var_os("CARGO_CFG_TOKIO_UNSTABLE").is_some();
    if unstable && os == "linux" && matches!(arch.as_str(), "x86_64" | "aarch64") {
        println!("cargo::rustc-cfg=taskscope_dumps");
    }
}
