//! Timeline traces read back by an independent reader: `read_trace.py`, on Python's
//! standard `json` module alone, prints what a viewer would draw.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// What the trace at `path` draws: `threads` (tid → name), `slices`, `flows` (each with the
/// task of the slice at either end), `lives`.
pub fn read_trace(path: &Path) -> Value {
    crate::tools::require("python3", "--version", "python3");
    let script = crate::workspace_root().join("tests/src/read_trace.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the trace does not read back: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the reader prints JSON")
}
