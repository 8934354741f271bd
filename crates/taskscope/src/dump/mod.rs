//! Await chains: where each live task is waiting, from tokio's task dumps.

/// Whether this build can take dumps, and if not, why (said once to clients).
pub(crate) fn unavailable_reason() -> Option<&'static str> {
    if cfg!(all(
        tokio_unstable,
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) {
        None
    } else if cfg!(tokio_unstable) {
        Some(
            "await chains are not available on this platform (tokio's task dumps need Linux on x86_64 or aarch64)",
        )
    } else {
        Some("await chains need the app built with --cfg tokio_unstable")
    }
}
