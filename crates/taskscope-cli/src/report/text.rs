//! The report for people: a verdict line, each finding with its stack, notes, a summary.

use std::fmt::Write;

use super::{Report, Verdict};
use crate::model::judge::finding::{Detail, Finding};
use crate::model::judge::policy::Severity;

/// ANSI styling, or none. Colour is for terminals only: escape codes in a CI log or a file
/// are noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Colour,
}

impl Style {
    /// Colour when writing to a terminal and `NO_COLOR` is unset or empty (no-color.org).
    pub(crate) fn detect(is_terminal: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if is_terminal && !no_color {
            Self::Colour
        } else {
            Self::Plain
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        match self {
            Self::Plain => text.to_owned(),
            Self::Colour => format!("\x1b[{code}m{text}\x1b[0m"),
        }
    }
}

/// The whole report.
pub(crate) fn render(report: &Report<'_>, style: Style) -> String {
    let mut out = String::new();
    out.push_str(&headline(report, style));
    out.push('\n');
    for finding in &report.judgement.findings {
        out.push('\n');
        finding_block(&mut out, finding, style);
    }
    let notes = &report.judgement.notes;
    let unused = &report.judgement.unused_allowances;
    if !notes.is_empty() || !unused.is_empty() {
        out.push('\n');
        for note in notes {
            let _ = writeln!(out, "{} {note}", style.paint("2", "note:"));
        }
        let label = if report.judgement.unused_allowances_fail {
            style.paint("1;31", "error:")
        } else {
            style.paint("2", "note:")
        };
        for allowance in unused {
            let _ = writeln!(out, "{label} {}", allowance.describe());
        }
    }
    out.push('\n');
    out.push_str(&tally(report));
    out.push('\n');
    out
}

/// The verdict and the tally only: what goes to stderr when the report itself goes to a
/// file or is in a machine format.
pub(crate) fn summary(report: &Report<'_>, style: Style) -> String {
    format!("{}\n{}\n", headline(report, style), tally(report))
}

fn headline(report: &Report<'_>, style: Style) -> String {
    let judgement = report.judgement;
    let verdict = match report.verdict() {
        Verdict::Pass => style.paint("1;32", "PASS"),
        Verdict::Fail => style.paint("1;31", "FAIL"),
        Verdict::Interrupted => style.paint("1;33", "INTERRUPTED"),
    };
    let (errors, warnings) = (
        judgement.count(Severity::Error),
        judgement.count(Severity::Warning),
    );
    let processes = match judgement.processes.as_slice() {
        [one] => format!(
            "1 process ({} pid {})",
            short_program(&one.program),
            one.pid
        ),
        many => format!("{} processes", many.len()),
    };
    let mut line = format!(
        "{verdict} taskscope check: {} {}, {} {} in {processes}",
        errors,
        plural(errors, "error", "errors"),
        warnings,
        plural(warnings, "warning", "warnings"),
    );
    if let Some(interruption) = report.interruption() {
        let _ = write!(line, "; {interruption}");
    }
    if let Some(failure) = report.command_failure() {
        let _ = write!(line, "; {failure}");
    }
    line
}

fn tally(report: &Report<'_>) -> String {
    let summary = report.judgement.summary;
    let mut line = format!(
        "{} {}: {} completed, {} cancelled, {} panicked",
        summary.tasks,
        if summary.tasks == 1 { "task" } else { "tasks" },
        summary.completed,
        summary.cancelled,
        summary.panicked
    );
    if report.judgement.allowed > 0 {
        let allowed = report.judgement.allowed;
        let what = if allowed == 1 { "finding" } else { "findings" };
        let _ = write!(line, "; {allowed} {what} accepted by allowances");
    }
    line
}

fn finding_block(out: &mut String, finding: &Finding, style: Style) {
    let label = match finding.severity {
        Severity::Error => style.paint("1;31", "error"),
        Severity::Warning => style.paint("1;33", "warning"),
    };
    let count = if finding.count > 1 {
        format!(" (x{})", finding.count)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{label}[{}] {}{count}",
        finding.kind,
        style.paint("1", &finding.spawn_location)
    );
    let _ = writeln!(out, "  {}", finding.message.replace('\n', "\n  "));
    if let Detail::Stall {
        backtrace, trace, ..
    } = &finding.detail
    {
        frames(out, backtrace, style);
        if let Some(trace) = trace {
            let _ = writeln!(out, "  timeline: {}", trace.display());
        }
    }
    if !finding.waiting_at.is_empty() {
        if let Some(point) = finding.waiting_point() {
            let _ = writeln!(out, "  {point}");
        } else {
            let _ = writeln!(
                out,
                "  waiting in tokio's code only; {}:",
                crate::model::waiting::NO_USER_AWAIT
            );
        }
        frames(out, &finding.waiting_at, style);
    }
    let _ = writeln!(
        out,
        "  in {} (pid {})",
        short_program(&finding.program),
        finding.pid
    );
}

fn frames(out: &mut String, frames: &[crate::model::stall::Frame], style: Style) {
    for frame in frames {
        let at = frame.location.as_deref().unwrap_or("?");
        let _ = writeln!(
            out,
            "{}",
            style.paint("2", &format!("    at {} ({at})", frame.function))
        );
    }
}

fn short_program(program: &str) -> &str {
    match program.rsplit('/').next() {
        Some(name) if !name.is_empty() => name,
        _ => "process",
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}
