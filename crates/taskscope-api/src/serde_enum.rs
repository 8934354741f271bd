//! JSON names for protobuf enum fields.
//!
//! prost stores enum fields as `i32`; serialized as-is they would be opaque numbers in
//! `taskscope events` output. These functions, wired in by the code generator with
//! `#[serde(serialize_with = ...)]`, write the enum's protobuf name instead (or the number
//! when it is not a known value, e.g. from a newer probe).

use serde::Serializer;

macro_rules! enum_names {
    ($($fn_name:ident => $ty:ident),* $(,)?) => {
        $(
            pub(crate) fn $fn_name<S: Serializer>(value: &i32, serializer: S) -> Result<S::Ok, S::Error> {
                match crate::v1::$ty::try_from(*value) {
                    Ok(known) => serializer.serialize_str(known.as_str_name()),
                    Err(_) => serializer.serialize_i32(*value),
                }
            }
        )*
    };
}

enum_names! {
    snapshot_mark => SnapshotMark,
    instrumentation => Instrumentation,
    task_kind => TaskKind,
    task_state => TaskState,
    outcome => Outcome,
    stall_phase => StallPhase,
    activity => Activity,
    source_kind => SourceKind,
    route => Route,
    capability => Capability,
}
