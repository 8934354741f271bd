//! A JUnit XML report, the format CI systems' test viewers read: one test case per
//! finding (failed for errors), a failed case when the command failed, and one passing
//! case when there is nothing to report, so a clean run still shows up as a green test.

use std::fmt::Write;

use super::Report;
use crate::model::judge::finding::{Detail, Finding};
use crate::model::judge::policy::Severity;

pub(crate) fn render(report: &Report<'_>) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    let mut tests = 0;
    for finding in &report.judgement.findings {
        tests += 1;
        failures += usize::from(finding.severity == Severity::Error);
        case(&mut cases, finding);
    }
    let outcomes = [
        ("interrupted", report.interruption()),
        ("command", report.command_failure()),
    ];
    for (kind, failure) in outcomes {
        let Some(failure) = failure else { continue };
        tests += 1;
        failures += 1;
        let _ = writeln!(
            cases,
            "    <testcase classname=\"taskscope\" name=\"{kind}\">\n      \
             <failure type=\"{kind}\" message=\"{}\"/>\n    </testcase>",
            escape(&failure)
        );
    }
    if report.judgement.unused_allowances_fail {
        for allowance in &report.judgement.unused_allowances {
            tests += 1;
            failures += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"taskscope\" name=\"allowance {}\">\n      \
                 <failure type=\"unused_allowance\" message=\"{}\"/>\n    </testcase>",
                escape(&allowance.allowance),
                escape(&allowance.describe())
            );
        }
    }
    if tests == 0 {
        tests = 1;
        cases.push_str("    <testcase classname=\"taskscope\" name=\"no stalls or leaks\"/>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"taskscope check\" tests=\"{tests}\" failures=\"{failures}\">\n  \
         <testsuite name=\"taskscope check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n\
         {cases}  </testsuite>\n</testsuites>\n"
    )
}

fn case(out: &mut String, finding: &Finding) {
    let name = format!("{} at {}", finding.kind, finding.spawn_location);
    let mut body = finding.message.clone();
    if let Detail::Stall { backtrace, .. } = &finding.detail {
        for frame in backtrace {
            let _ = write!(
                body,
                "\n    at {} ({})",
                frame.function,
                frame.location.as_deref().unwrap_or("?")
            );
        }
    }
    let _ = write!(body, "\nprocess: {} (pid {})", finding.program, finding.pid);
    let _ = writeln!(
        out,
        "    <testcase classname=\"taskscope.{}\" name=\"{}\">",
        finding.kind,
        escape(&name)
    );
    match finding.severity {
        Severity::Error => {
            let _ = writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                finding.kind,
                escape(&finding.message),
                escape(&body)
            );
        }
        Severity::Warning => {
            let _ = writeln!(
                out,
                "      <system-out>warning: {}</system-out>",
                escape(&body)
            );
        }
    }
    out.push_str("    </testcase>\n");
}

/// XML-escapes text for attributes and elements alike, dropping the control characters
/// XML 1.0 cannot carry at all (a panic message can hold anything).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}
