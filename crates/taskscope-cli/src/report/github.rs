//! GitHub Actions workflow commands: each finding becomes an annotation on the line of the
//! pull request's diff it is about (`::error file=…,line=…,col=…,title=…::message`).

use std::fmt::Write;
use std::path::Path;

use super::{Report, split_location};
use crate::model::judge::finding::{Detail, Finding};
use crate::model::judge::policy::Severity;

/// The annotations. `root` is the repository checkout (GitHub resolves `file=` against
/// it): absolute paths below it are made relative, so stack frames located by debug info
/// still land on the diff.
pub(crate) fn render(report: &Report<'_>, root: Option<&Path>) -> String {
    let mut out = String::new();
    for finding in &report.judgement.findings {
        annotation(&mut out, finding, root);
    }
    for failure in report
        .interruption()
        .into_iter()
        .chain(report.command_failure())
    {
        let _ = writeln!(
            out,
            "::error title={}::{}",
            property("taskscope check"),
            data(&failure)
        );
    }
    let unused = if report.judgement.unused_allowances_fail {
        "error"
    } else {
        "notice"
    };
    for allowance in &report.judgement.unused_allowances {
        let _ = writeln!(
            out,
            "::{unused} title={}::{}",
            property("taskscope check"),
            data(&allowance.describe())
        );
    }
    for note in &report.judgement.notes {
        let _ = writeln!(
            out,
            "::notice title={}::{}",
            property("taskscope check"),
            data(note)
        );
    }
    out
}

fn annotation(out: &mut String, finding: &Finding, root: Option<&Path>) {
    if let Detail::Deadlock { tasks } = &finding.detail {
        // One annotation on each task's `.await`: every line of the cycle is in the diff
        // someone may be reviewing.
        for task in tasks {
            let at = task.await_location().unwrap_or(&task.spawn_location);
            write_annotation(out, finding, at, &finding.message, root);
        }
        return;
    }
    let waiting = finding
        .waiting_point()
        .map(|point| format!("; {point}"))
        .unwrap_or_default();
    let message = format!(
        "{}{waiting} [spawned at {}]",
        finding.message, finding.spawn_location
    );
    write_annotation(out, finding, finding.source_location(), &message, root);
}

fn write_annotation(
    out: &mut String,
    finding: &Finding,
    location: &str,
    message: &str,
    root: Option<&Path>,
) {
    let command = match finding.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut properties = Vec::new();
    if let Some((file, line, col)) = split_location(location) {
        properties.push(format!("file={}", property(&relative(file, root))));
        properties.push(format!("line={line}"));
        if let Some(col) = col {
            properties.push(format!("col={col}"));
        }
    }
    let count = if finding.count > 1 {
        format!(" (x{})", finding.count)
    } else {
        String::new()
    };
    properties.push(format!(
        "title={}",
        property(&format!("taskscope {}{count}", finding.kind))
    ));
    let _ = writeln!(
        out,
        "::{command} {}::{}",
        properties.join(","),
        data(message)
    );
}

fn relative(file: &str, root: Option<&Path>) -> String {
    root.and_then(|root| Path::new(file).strip_prefix(root).ok())
        .map_or_else(|| file.to_owned(), |rel| rel.to_string_lossy().into_owned())
}

/// Escapes a command's message (GitHub's rules: `%`, CR and LF).
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value: also `:` and `,`, which delimit properties.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}
