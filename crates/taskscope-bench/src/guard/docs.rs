//! `taskscope-bench docs`: `docs/performance.md`'s table of ratios, generated from the
//! committed ratios file, so that the figures the docs quote are the ones the guard
//! compares against and cannot drift from them.
//!
//! The table sits between two marker lines ([`BEGIN`], [`END`]); everything outside them
//! is prose and is left alone.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::ratios_file::{CheckRecord, RatiosFile, workspace_root};
use crate::mode::Mode;

/// The line before the generated region.
pub(crate) const BEGIN: &str = "<!-- ratios:begin -->";
/// The line after it.
pub(crate) const END: &str = "<!-- ratios:end -->";

/// What `docs` was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct DocsPlan {
    pub(crate) ratios: PathBuf,
    pub(crate) doc: PathBuf,
    /// Only say whether the region is up to date; write nothing.
    pub(crate) check: bool,
}

/// How `docs` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocsOutcome {
    /// The region already said what the file gives.
    Fresh,
    /// The region was rewritten.
    Written,
    /// `--check`: the region differs from what the file gives.
    Stale,
}

/// The default page: `docs/performance.md` of this workspace.
pub(crate) fn default_doc() -> PathBuf {
    workspace_root().join("docs/performance.md")
}

/// Regenerates (or, with `check`, compares) the page's region.
pub(crate) fn main(plan: &DocsPlan) -> anyhow::Result<DocsOutcome> {
    let file = RatiosFile::load(&plan.ratios)?;
    let page = std::fs::read_to_string(&plan.doc)
        .with_context(|| format!("cannot read {}", plan.doc.display()))?;
    let updated = splice(&page, &render(&file))
        .with_context(|| format!("cannot find the ratios table in {}", plan.doc.display()))?;
    if updated == page {
        return Ok(DocsOutcome::Fresh);
    }
    if plan.check {
        eprintln!(
            "{}'s ratios table is not what {} gives; regenerate it with \
             `cargo run -p taskscope-bench -- docs`",
            plan.doc.display(),
            plan.ratios.display()
        );
        return Ok(DocsOutcome::Stale);
    }
    std::fs::write(&plan.doc, updated)
        .with_context(|| format!("cannot write {}", plan.doc.display()))?;
    Ok(DocsOutcome::Written)
}

/// `page` with the text between the marker lines replaced by `region`.
pub(crate) fn splice(page: &str, region: &str) -> anyhow::Result<String> {
    let line_of = |marker: &str| -> anyhow::Result<usize> {
        let found: Vec<usize> = page
            .lines()
            .enumerate()
            .filter(|(_, line)| line.trim_end() == marker)
            .map(|(index, _)| index)
            .collect();
        match found[..] {
            [index] => Ok(index),
            [] => bail!("no line `{marker}`: put the markers {BEGIN} and {END} around it"),
            _ => bail!("`{marker}` appears {} times; keep one", found.len()),
        }
    };
    let (begin, end) = (line_of(BEGIN)?, line_of(END)?);
    if end < begin {
        bail!("`{END}` comes before `{BEGIN}`");
    }
    let lines: Vec<&str> = page.lines().collect();
    let mut out = String::with_capacity(page.len());
    for line in &lines[..=begin] {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(region);
    for line in &lines[end..] {
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// The region's text: where and when the ratios were taken, then one row per ratio.
pub(crate) fn render(file: &RatiosFile) -> String {
    let m = &file.machine;
    let (low, high) = file
        .load_per_rep
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &l| {
            (lo.min(l), hi.max(l))
        });
    let per_rep = if low <= high {
        format!(", {low:.1}–{high:.1} at the start of each repetition")
    } else {
        String::new()
    };
    let mut out = format!(
        "<!-- Generated from crates/taskscope-bench/ratios.json by \
         `cargo run -p taskscope-bench -- docs`; edit neither by hand. -->\n\n\
         Recorded {} by `taskscope-bench {}` (taskscope {}, commit `{}`) on {}, {} cores, \
         {:.1} GiB, Linux {}; load average {:.2} at the start and {:.2} at the end{per_rep}. \
         Each ratio is a mode's time over the other mode's, both run in the same \
         repetition: the median of {} repetitions, their interquartile range (p25–p75) and, \
         for wall time, their extremes (min–max). A target is met when the wall-time median \
         is at or under it.\n\n",
        file.date,
        file.command,
        file.version,
        file.commit,
        m.cpu,
        m.cores,
        m.memory_gib,
        m.kernel,
        m.load_at_start,
        m.load_at_end,
        file.reps,
    );
    out.push_str(
        "| mode | over | workload | wall × | p25–p75 | min–max | CPU × | p25–p75 | target |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for check in &file.checks {
        out.push_str(&row(check));
    }
    out.push('\n');
    out
}

fn row(check: &CheckRecord) -> String {
    let two = |v: f64| format!("{v:.2}");
    let (median, iqr, range) = check.wall().map_or(
        ("–".to_owned(), "–".to_owned(), "–".to_owned()),
        |q| {
            (
                format!("{}×", two(q.median)),
                format!("{}–{}", two(q.p25), two(q.p75)),
                format!("{}–{}", two(q.min), two(q.max)),
            )
        },
    );
    let (cpu, cpu_iqr) = check.cpu().map_or(("–".to_owned(), "–".to_owned()), |q| {
        (
            format!("{}×", two(q.median)),
            format!("{}–{}", two(q.p25), two(q.p75)),
        )
    });
    // The target is today's (`checks.rs`), not the one written when the ratios were
    // recorded: a target is a goal, which may be corrected without measuring again.
    let target = super::checks::CHECKS
        .iter()
        .find(|c| c.id() == check.id)
        .map_or(check.target, |c| c.target);
    let target = match (check.guarded, target, check.wall()) {
        (false, _, _) => "reference, not guarded".to_owned(),
        (true, None, _) => "guarded".to_owned(),
        (true, Some(target), Some(q)) if q.median <= target => format!("≤ {}×: met", two(target)),
        (true, Some(target), _) => format!("≤ {}×: **missed**", two(target)),
    };
    format!(
        "| {} | {} | {} {} | {median} | {iqr} | {range} | {cpu} | {cpu_iqr} | {target} |\n",
        label(check.mode),
        label(check.against),
        check.workload,
        thousands(check.size),
    )
}

/// How the docs name a mode.
fn label(mode: Mode) -> String {
    match mode {
        Mode::None => "`none` (tokio with the probe's features)".to_owned(),
        Mode::Plain => "plain tokio".to_owned(),
        Mode::Taskscope => "`taskscope` (hooks route)".to_owned(),
        Mode::TaskscopeLean => "`taskscope-lean` (hooks route, no tokio `tracing`)".to_owned(),
        Mode::TaskscopeInit => "`taskscope-init` (tracing route)".to_owned(),
        Mode::TaskscopeNoFlight => "`taskscope-noflight` (`TASKSCOPE_FLIGHT=off`)".to_owned(),
        Mode::Console => "console-subscriber".to_owned(),
        other => format!("`{other}`"),
    }
}

/// `2000000` as `2,000,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> RatiosFile {
        let path = format!(
            "{}/tests/fixtures/baseline.json",
            env!("CARGO_MANIFEST_DIR")
        );
        RatiosFile::load(std::path::Path::new(&path)).unwrap()
    }

    #[test]
    fn the_region_between_the_markers_is_replaced_and_nothing_else() {
        let page = format!("# Title\n\nprose\n{BEGIN}\nold table\n{END}\nmore prose\n");
        let out = splice(&page, "new table\n").unwrap();
        assert_eq!(
            out,
            format!("# Title\n\nprose\n{BEGIN}\nnew table\n{END}\nmore prose\n")
        );
        assert_eq!(splice(&out, "new table\n").unwrap(), out);
    }

    #[test]
    fn missing_doubled_or_swapped_markers_are_refused() {
        assert!(splice("no markers\n", "x").is_err());
        assert!(splice(&format!("{BEGIN}\n{END}\n{END}\n"), "x").is_err());
        assert!(splice(&format!("{END}\n{BEGIN}\n"), "x").is_err());
    }

    #[test]
    fn each_ratio_is_a_row_with_its_spread_and_target() {
        let region = render(&fixture());
        assert!(region.contains("2 cores"), "{region}");
        let rows: Vec<&str> = region.lines().filter(|l| l.starts_with("| `")).collect();
        assert_eq!(rows.len(), 1, "{region}");
        // The fixture was recorded against a target of 1.5; the table shows today's.
        assert_eq!(
            rows[0],
            "| `taskscope` (hooks route) | plain tokio | pingpong 2,000,000 | 1.32× | 1.30–1.35 \
             | 1.28–1.50 | 1.32× | 1.30–1.35 | ≤ 1.10×: **missed** |"
        );
        assert!(region.contains("| console-subscriber | plain tokio | pingpong 200,000 | 44.00×"));
        assert!(region.contains("reference, not guarded"));
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(2_000_000), "2,000,000");
    }
}
