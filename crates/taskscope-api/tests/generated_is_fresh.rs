//! The generated protocol code is committed so that no machine needs `protoc` or a build
//! script. This test regenerates it (pure Rust: `protox` + `tonic-prost-build`) into a
//! temporary directory and fails when the committed copy is stale.
//!
//! To update the committed copy after editing the `.proto`:
//! `TASKSCOPE_BLESS=1 cargo test -p taskscope-api --test generated_is_fresh`.

use std::path::{Path, PathBuf};

/// Enum fields that `taskscope events` should print by name: (proto path, serializer fn).
const ENUM_FIELDS: &[(&str, &str)] = &[
    ("taskscope.v1.Update.snapshot", "snapshot_mark"),
    ("taskscope.v1.Update.instrumentation", "instrumentation"),
    (
        "taskscope.v1.ProcessInfo.instrumentation",
        "instrumentation",
    ),
    ("taskscope.v1.TaskSpawned.kind", "task_kind"),
    ("taskscope.v1.TaskStats.state", "task_state"),
    ("taskscope.v1.TaskEnded.outcome", "outcome"),
    ("taskscope.v1.Stall.phase", "stall_phase"),
    ("taskscope.v1.Stall.activity", "activity"),
    ("taskscope.v1.ProcessInfo.source", "source_kind"),
    ("taskscope.v1.ProcessInfo.route", "route"),
    ("taskscope.v1.ProcessInfo.capability", "capability"),
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate(out_dir: &Path) -> PathBuf {
    let proto_root = crate_dir().join("proto");
    let fds =
        protox::compile(["taskscope/v1/probe.proto"], [&proto_root]).expect("the .proto compiles");
    let mut config = tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .out_dir(out_dir)
        .type_attribute(".taskscope.v1", "#[derive(serde::Serialize)]");
    for (field, function) in ENUM_FIELDS {
        config = config.field_attribute(
            field,
            format!("#[serde(serialize_with = \"crate::serde_enum::{function}\")]"),
        );
    }
    config.compile_fds(fds).expect("code generation succeeds");
    out_dir.join("taskscope.v1.rs")
}

#[test]
fn committed_generated_code_matches_the_proto() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = std::fs::read_to_string(generate(dir.path())).unwrap();
    let committed_path = crate_dir().join("src/generated/taskscope.v1.rs");
    if std::env::var_os("TASKSCOPE_BLESS").is_some() {
        std::fs::write(&committed_path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: regenerate it with \
         `TASKSCOPE_BLESS=1 cargo test -p taskscope-api --test generated_is_fresh`",
        committed_path.display()
    );
}
