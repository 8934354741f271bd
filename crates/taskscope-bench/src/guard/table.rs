//! The guard's terminal output: what a run recorded, and each ratio against the baseline
//! with its verdict.

use super::compare::{Judgement, MIN_TOLERANCE, Verdict};
use super::ratios_file::RatiosFile;
use crate::report::table;
use crate::stats::Quartiles;

/// Where and when a run was taken, on one line.
fn header(label: &str, file: &RatiosFile) -> String {
    let m = &file.machine;
    let loads = file
        .load_per_rep
        .iter()
        .copied()
        .fold(None, |range: Option<(f64, f64)>, load| {
            Some(range.map_or((load, load), |(lo, hi)| (lo.min(load), hi.max(load))))
        })
        .map_or(String::new(), |(lo, hi)| {
            format!(", per repetition {lo:.1}-{hi:.1}")
        });
    format!(
        "{label}: {} at {}, {} repetitions, {} ({} cores), load {:.2} -> {:.2}{loads}\n",
        file.date, file.commit, file.reps, m.cpu, m.cores, m.load_at_start, m.load_at_end
    )
}

/// `1.31 (1.28-1.35)`: median and interquartile range.
fn quartiles_text(q: Option<Quartiles>) -> String {
    q.map_or("-".to_owned(), |q| {
        format!("{:.2} ({:.2}-{:.2})", q.median, q.p25, q.p75)
    })
}

/// What `--bless` wrote.
pub(crate) fn recorded(run: &RatiosFile) -> String {
    let mut rows = vec![
        [
            "ratio",
            "size",
            "wall x (p25-p75)",
            "min-max",
            "CPU x (p25-p75)",
            "target",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for check in &run.checks {
        let wall = check.wall();
        rows.push(vec![
            check.id.clone(),
            check.size.to_string(),
            quartiles_text(wall),
            wall.map_or("-".to_owned(), |q| format!("{:.2}-{:.2}", q.min, q.max)),
            quartiles_text(check.cpu()),
            check.target.map_or(String::new(), |t| format!("<= {t:.2}")),
        ]);
    }
    format!("{}\n{}", header("recorded", run), table(&rows))
}

/// Every ratio against the baseline, then the verdict in a sentence.
pub(crate) fn judged(baseline: &RatiosFile, run: &RatiosFile, judgements: &[Judgement]) -> String {
    let mut out = header("baseline", baseline);
    out.push_str(&header("this run", run));
    if baseline.machine.cores != run.machine.cores || baseline.machine.cpu != run.machine.cpu {
        out.push_str(
            "warning: the baseline was recorded on another machine; its ratios may not carry over\n",
        );
    }
    out.push('\n');
    let mut rows = vec![
        [
            "ratio",
            "median of",
            "baseline x (p25-p75)",
            "now x (p25-p75)",
            "change",
            "noise",
            "verdict",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for j in judgements {
        if j.measures.is_empty() {
            rows.push(vec![
                j.id.clone(),
                "wall".to_owned(),
                "-".to_owned(),
                quartiles_text(Some(j.new_wall)),
                "-".to_owned(),
                "-".to_owned(),
                verdict_text(&j.verdict, j.guarded),
            ]);
        }
        for m in &j.measures {
            rows.push(vec![
                j.id.clone(),
                m.what.to_owned(),
                quartiles_text(Some(m.baseline)),
                quartiles_text(Some(m.new)),
                format!(
                    "{:+.3} ({:+.1}%)",
                    m.change(),
                    100.0 * m.change() / m.baseline.median
                ),
                format!("±{:.3}", m.tolerance),
                verdict_text(&m.verdict, j.guarded),
            ]);
        }
    }
    out.push_str(&table(&rows));
    out.push_str(&format!(
        "\nnoise: half the interquartile range of the baseline's repetitions plus half that of \
         this run's, at least {:.0}% of the baseline's median; a ratio is worse when its wall \
         or its CPU median is.\n",
        MIN_TOLERANCE * 100.0
    ));
    out.push_str(&summary(judgements));
    out
}

fn verdict_text(verdict: &Verdict, guarded: bool) -> String {
    let reference = if guarded {
        ""
    } else {
        " (reference, not guarded)"
    };
    match verdict {
        Verdict::Worse if guarded => "WORSE beyond the noise".to_owned(),
        Verdict::Worse => format!("worse{reference}"),
        Verdict::Within => format!("within the noise{reference}"),
        Verdict::Better => format!("better{reference}"),
        Verdict::NoBaseline(why) => format!("NO BASELINE: {why}{reference}"),
    }
}

/// The last lines: what failed, or that it passed and what improved.
fn summary(judgements: &[Judgement]) -> String {
    let named = |keep: &dyn Fn(&Judgement) -> bool| -> Vec<String> {
        judgements
            .iter()
            .filter(|j| keep(j))
            .map(|j| {
                let moved: Vec<String> = j
                    .measures
                    .iter()
                    .filter(|m| m.verdict == j.verdict)
                    .map(|m| format!("{} {:+.3}, noise ±{:.3}", m.what, m.change(), m.tolerance))
                    .collect();
                if moved.is_empty() {
                    j.id.clone()
                } else {
                    format!("{} ({})", j.id, moved.join("; "))
                }
            })
            .collect()
    };
    let failed = named(&|j| j.fails());
    let better = named(&|j| j.guarded && j.verdict == Verdict::Better);
    let mut out = String::new();
    if !better.is_empty() {
        out.push_str(&format!(
            "better than the baseline: {}; record it with `guard --bless`\n",
            better.join(", ")
        ));
    }
    if failed.is_empty() {
        let within = judgements
            .iter()
            .filter(|j| j.guarded && j.verdict == Verdict::Within)
            .count();
        out.push_str(&format!(
            "PASSED: no guarded ratio worse beyond the noise ({within} within it, {} better)\n",
            better.len()
        ));
    } else {
        out.push_str(&format!(
            "FAILED: {} guarded ratio(s) worse beyond the noise or without a baseline: {}\n",
            failed.len(),
            failed.join(", ")
        ));
    }
    out
}
