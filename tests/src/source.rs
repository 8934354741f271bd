//! Places in the example programs' sources, found by the comments that mark them
//! (`// FAULT: <kind>`, `// AWAIT: <function>`, `// BLOCKS`), never by hard-coded line
//! numbers: an edit to an example moves the expectation with it.

use std::fmt;

use crate::workspace_root;

/// Where the example programs live, relative to the workspace root.
const EXAMPLES: &str = "crates/taskscope-examples";

/// A `file:line:col` in the workspace, as taskscope reports spawn locations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// Relative to the workspace root.
    pub file: String,
    /// 1-based.
    pub line: u32,
    /// 1-based.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

fn read_example(source: &str) -> String {
    let path = workspace_root().join(EXAMPLES).join(source);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The location of `call` on the first line of the example source `source` (relative to
/// `crates/taskscope-examples`) containing `marker`, or on the closest line above it that
/// has one (rustfmt may move a trailing comment after an opening brace onto the next
/// line, inside the spawned block). `call` `spawn` means `tokio::spawn` where a line has
/// one.
pub fn location_of_line(source: &str, marker: &str, call: &str) -> Location {
    let text = read_example(source);
    let lines: Vec<&str> = text.lines().collect();
    let marked = lines
        .iter()
        .position(|line| line.contains(marker))
        .unwrap_or_else(|| panic!("no `{marker}` in {source}"));
    let column_of_call = |line: &str| match line.find("tokio::spawn") {
        Some(column) if call == "spawn" => Some(column),
        _ => line.find(call),
    };
    let (index, column) = (marked.saturating_sub(3)..=marked)
        .rev()
        .find_map(|index| Some((index, column_of_call(lines[index])?)))
        .unwrap_or_else(|| panic!("no `{call}` at or just above {source}:{}", marked + 1));
    Location {
        file: format!("{EXAMPLES}/{source}"),
        line: index as u32 + 1,
        column: column as u32 + 1,
    }
}

/// The spawn call on the line marked `// FAULT: <kind>`: where the example's one fault is.
pub fn fault_location(source: &str, kind: &str) -> Location {
    location_of_line(source, &format!("// FAULT: {kind}"), "spawn")
}

/// The 1-based number of the line that ends with `// <marker>` in an example's source.
pub fn marked_line(source: &str, marker: &str) -> u32 {
    let text = read_example(source);
    let marker = format!("// {marker}");
    text.lines()
        .position(|l| l.trim_end().ends_with(&marker))
        .unwrap_or_else(|| panic!("no {marker} in {source}")) as u32
        + 1
}
