//! What tokio's `runtime.spawn` span fields say about a task, as console-api carries them:
//! its id, name, kind and spawn location. Field names arrive either as strings or as
//! indexes into the registered metadata's field names; values as whatever type the span
//! recorded them with (`%kind` is a debug string).

use std::collections::HashMap;

use console_api as console;
use console_api::field::{Name, Value};
use taskscope_api::v1;

/// A span's callsite, as registered in `new_metadata`: what `Field::name_idx` indexes.
#[derive(Debug, Default)]
pub(crate) struct Meta {
    pub(crate) field_names: Vec<String>,
}

/// The fields taskscope uses.
#[derive(Debug, Default)]
pub(crate) struct TaskFields {
    pub(crate) task_id: Option<u64>,
    pub(crate) name: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) location: Option<v1::Location>,
}

impl TaskFields {
    /// The task fields taskscope uses: tokio's `task.id`, `task.name`, `kind` and the
    /// `loc.*` fields (for subscribers that do not fill `Task.location`).
    pub(crate) fn of(task: &console::tasks::Task, metadata: &HashMap<u64, Meta>) -> Self {
        let mut found = Self::default();
        let (mut file, mut line, mut column) = (None, None, None);
        for field in &task.fields {
            let meta_id = field
                .metadata_id
                .as_ref()
                .or(task.metadata.as_ref())
                .map(|m| m.id);
            let name = match &field.name {
                Some(Name::StrName(name)) => name.as_str(),
                Some(Name::NameIdx(index)) => meta_id
                    .and_then(|m| metadata.get(&m))
                    .and_then(|m| m.field_names.get(usize::try_from(*index).ok()?))
                    .map_or("", String::as_str),
                None => "",
            };
            let Some(value) = &field.value else { continue };
            match name {
                "task.id" => found.task_id = as_u64(value),
                "task.name" => found.name = as_text(value).filter(|n| !n.is_empty()),
                "kind" => found.kind = as_text(value),
                "loc.file" => file = as_text(value),
                "loc.line" => line = as_u64(value),
                "loc.col" => column = as_u64(value),
                _ => {}
            }
        }
        found.location = file.map(|file| v1::Location {
            file,
            line: line.and_then(|l| u32::try_from(l).ok()).unwrap_or(0),
            column: column.and_then(|c| u32::try_from(c).ok()).unwrap_or(0),
        });
        found
    }
}

fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::U64Val(v) => Some(*v),
        Value::I64Val(v) => u64::try_from(*v).ok(),
        Value::StrVal(s) | Value::DebugVal(s) => s.trim().parse().ok(),
        Value::BoolVal(_) => None,
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::StrVal(s) => Some(s.clone()),
        // `%value` fields arrive as debug values; a `?value` of a string keeps its quotes.
        Value::DebugVal(s) => Some(s.trim_matches('"').to_owned()),
        Value::U64Val(v) => Some(v.to_string()),
        Value::I64Val(v) => Some(v.to_string()),
        Value::BoolVal(v) => Some(v.to_string()),
    }
}
