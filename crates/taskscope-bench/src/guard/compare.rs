//! The rule that says whether a ratio got worse, better, or stayed within the noise.
//!
//! A ratio is judged twice, by its wall-time and by its CPU-time median over the
//! repetitions: wall time is what the targets are stated in, CPU time is what moves least
//! when other processes share the machine (a busy neighbour delays a run more than it
//! makes it work more), so it catches a regression that wall time's spread would hide.
//! How far a median may move before it means something is measured, not assumed: half
//! the interquartile range of the committed repetitions plus half that of the new ones
//! (the quartiles leave out the one-off outliers of a shared machine, which the extremes
//! keep), and never less than [`MIN_TOLERANCE`] of the committed median (two runs an hour
//! apart differ by more than either run's own spread shows). A median above the committed
//! one by more than that is worse, below it by more than that better, and anything else
//! within the noise. A ratio is worse when either of its medians is.

use super::ratios_file::{CheckRecord, RatiosFile};
use crate::stats::Quartiles;

/// The smallest tolerance, as a fraction of the committed median: 5%, the run-to-run
/// difference `docs/performance.md` found meaningless on this kind of machine.
pub(crate) const MIN_TOLERANCE: f64 = 0.05;

/// What became of one ratio, or of one of its medians.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// A median rose by more than the tolerance.
    Worse,
    /// The medians moved by no more than the tolerance.
    Within,
    /// A median fell by more than the tolerance, and none rose by more.
    Better,
    /// Nothing to compare with, and why.
    NoBaseline(String),
}

/// One median of a ratio, against the committed one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measure {
    /// `wall` or `CPU`.
    pub(crate) what: &'static str,
    pub(crate) new: Quartiles,
    pub(crate) baseline: Quartiles,
    pub(crate) tolerance: f64,
    pub(crate) verdict: Verdict,
}

impl Measure {
    fn new(what: &'static str, baseline: Quartiles, new: Quartiles) -> Self {
        let tolerance = tolerance(&baseline, &new);
        let change = new.median - baseline.median;
        let verdict = if change > tolerance {
            Verdict::Worse
        } else if change < -tolerance {
            Verdict::Better
        } else {
            Verdict::Within
        };
        Self {
            what,
            new,
            baseline,
            tolerance,
            verdict,
        }
    }

    /// New median minus the committed one.
    pub(crate) fn change(&self) -> f64 {
        self.new.median - self.baseline.median
    }
}

/// One ratio judged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Judgement {
    pub(crate) id: String,
    /// Whether a worse figure fails the guard (console-subscriber's do not).
    pub(crate) guarded: bool,
    /// The new wall-time figures, shown when there is nothing to compare them with.
    pub(crate) new_wall: Quartiles,
    /// Wall time, then CPU time; empty without a baseline.
    pub(crate) measures: Vec<Measure>,
    pub(crate) verdict: Verdict,
}

impl Judgement {
    /// Whether this ratio fails the guard: a guarded ratio that got worse, or that the
    /// baseline does not have (the guard cannot vouch for it).
    pub(crate) fn fails(&self) -> bool {
        self.guarded && matches!(self.verdict, Verdict::Worse | Verdict::NoBaseline(_))
    }
}

/// How far a median may move before it counts: the two runs' half interquartile ranges
/// added, at least [`MIN_TOLERANCE`] of the committed median.
pub(crate) fn tolerance(baseline: &Quartiles, new: &Quartiles) -> f64 {
    (baseline.half_iqr() + new.half_iqr()).max(MIN_TOLERANCE * baseline.median)
}

/// Judges every ratio of `run` against `baseline`. Ratios only the baseline has (a run
/// limited with `--workloads`) are not judged.
pub(crate) fn judge(baseline: &RatiosFile, run: &RatiosFile) -> Vec<Judgement> {
    run.checks
        .iter()
        .filter_map(|check| {
            let new_wall = check.wall()?;
            let (measures, verdict) = match baseline.check(&check.id) {
                None => (
                    Vec::new(),
                    Verdict::NoBaseline(format!(
                        "not in the baseline (recorded {} at {}): record it with `guard --bless`",
                        baseline.date, baseline.commit
                    )),
                ),
                Some(committed) if committed.size != check.size => (
                    Vec::new(),
                    Verdict::NoBaseline(format!(
                        "the baseline ran it at size {}, this run at {}: record it again \
                         with `guard --bless`",
                        committed.size, check.size
                    )),
                ),
                Some(committed) => {
                    let measures = measures(committed, check);
                    let verdict = combined(&measures);
                    (measures, verdict)
                }
            };
            Some(Judgement {
                id: check.id.clone(),
                guarded: check.guarded,
                new_wall,
                measures,
                verdict,
            })
        })
        .collect()
}

fn measures(committed: &CheckRecord, new: &CheckRecord) -> Vec<Measure> {
    [
        ("wall", committed.wall(), new.wall()),
        ("CPU", committed.cpu(), new.cpu()),
    ]
    .into_iter()
    .filter_map(|(what, committed, new)| Some(Measure::new(what, committed?, new?)))
    .collect()
}

/// Worse if any median is worse, better if any is better and none worse.
fn combined(measures: &[Measure]) -> Verdict {
    if measures.is_empty() {
        Verdict::NoBaseline("the baseline has no ratios for it".to_owned())
    } else if measures.iter().any(|m| m.verdict == Verdict::Worse) {
        Verdict::Worse
    } else if measures.iter().any(|m| m.verdict == Verdict::Better) {
        Verdict::Better
    } else {
        Verdict::Within
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> RatiosFile {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        RatiosFile::load(std::path::Path::new(&path)).unwrap()
    }

    fn judged(run: &str) -> Vec<Judgement> {
        judge(&fixture("baseline.json"), &fixture(run))
    }

    fn one<'a>(judgements: &'a [Judgement], id: &str) -> &'a Judgement {
        judgements.iter().find(|j| j.id == id).unwrap()
    }

    #[test]
    fn a_median_worse_by_more_than_the_noise_fails() {
        let judgements = judged("run-worse.json");
        let pingpong = one(&judgements, "pingpong:taskscope/plain");
        assert_eq!(pingpong.verdict, Verdict::Worse);
        assert!(pingpong.fails());
        // 1.32 -> 1.56: the half interquartile ranges are 0.025 and 0.04, so the 5% floor
        // (0.066) is the tolerance.
        let wall = &pingpong.measures[0];
        assert_eq!(wall.what, "wall");
        assert!((wall.change() - 0.24).abs() < 1e-9);
        assert!((wall.tolerance - 0.066).abs() < 1e-9);
    }

    #[test]
    fn a_cpu_median_worse_beyond_the_noise_fails_even_when_wall_time_is_within_it() {
        let judgements = judged("run-cpu-worse.json");
        let pingpong = one(&judgements, "pingpong:taskscope/plain");
        let verdicts: Vec<(&str, &Verdict)> = pingpong
            .measures
            .iter()
            .map(|m| (m.what, &m.verdict))
            .collect();
        assert_eq!(
            verdicts,
            [("wall", &Verdict::Within), ("CPU", &Verdict::Worse)]
        );
        assert_eq!(pingpong.verdict, Verdict::Worse);
        assert!(pingpong.fails());
    }

    #[test]
    fn a_worse_reference_ratio_is_reported_but_does_not_fail() {
        let judgements = judged("run-worse.json");
        let console = one(&judgements, "pingpong:console/plain");
        assert_eq!(console.verdict, Verdict::Worse);
        assert!(!console.fails());
    }

    #[test]
    fn a_median_that_moved_within_the_noise_passes() {
        let judgements = judged("run-within.json");
        let pingpong = one(&judgements, "pingpong:taskscope/plain");
        // 1.32 -> 1.35, tolerance 0.025 + 0.05.
        assert_eq!(pingpong.verdict, Verdict::Within);
        assert!((pingpong.measures[0].tolerance - 0.075).abs() < 1e-9);
        assert!(!judgements.iter().any(Judgement::fails));
    }

    #[test]
    fn a_median_better_by_more_than_the_noise_passes_as_better() {
        let judgements = judged("run-better.json");
        let pingpong = one(&judgements, "pingpong:taskscope/plain");
        assert_eq!(pingpong.verdict, Verdict::Better);
        assert!(!pingpong.fails());
    }

    #[test]
    fn a_ratio_the_baseline_does_not_have_fails_saying_so() {
        let judgements = judged("run-new-check.json");
        let spawn = one(&judgements, "spawn:taskscope/plain");
        let Verdict::NoBaseline(why) = &spawn.verdict else {
            panic!("{spawn:?}");
        };
        assert!(why.contains("not in the baseline"), "{why}");
        assert!(why.contains("guard --bless"), "{why}");
        assert!(spawn.fails());
        assert!(spawn.measures.is_empty());
    }

    #[test]
    fn a_ratio_only_the_baseline_has_is_not_judged() {
        let judgements = judge(&fixture("run-new-check.json"), &fixture("baseline.json"));
        assert!(!judgements.iter().any(|j| j.id.starts_with("spawn")));
    }
}
