//! Medians, spreads and percentiles: the only statistics the report uses. Medians rather
//! than means, because a shared machine produces outliers in one direction only.

use serde::Serialize;

/// A median with the smallest and largest value it was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Spread {
    /// `None` for no values.
    pub(crate) fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: values[0],
            max: values[n - 1],
        })
    }

    /// Whether the values were not all the same (a single run has no spread).
    pub(crate) fn varies(&self) -> bool {
        self.max > self.min
    }
}

/// The five figures a ratio's repetitions are judged by: median, quartiles and extremes.
/// The quartiles leave out the one-off outliers a shared machine produces, which the
/// extremes keep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub(crate) struct Quartiles {
    pub(crate) median: f64,
    pub(crate) p25: f64,
    pub(crate) p75: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Quartiles {
    /// `None` for no (finite) values. Quartiles by the nearest rank: with 3 values they are
    /// the extremes, with 7 the 2nd and 6th.
    pub(crate) fn of(values: &[f64]) -> Option<Self> {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let spread = Spread::of(finite.iter().copied())?;
        Some(Self {
            median: spread.median,
            p25: percentile(&finite, 25.0)?,
            p75: percentile(&finite, 75.0)?,
            min: spread.min,
            max: spread.max,
        })
    }

    /// Half the interquartile range: how far a typical repetition lies from the median.
    pub(crate) fn half_iqr(&self) -> f64 {
        (self.p75 - self.p25) / 2.0
    }
}

/// The `p`-th percentile (0–100) by the nearest-rank method; `None` for no values.
pub(crate) fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_middle_pair_average() {
        let s = Spread::of([4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        assert!(s.varies());
        assert!(Spread::of([]).is_none());
        assert!(!Spread::of([7.0]).unwrap().varies());
    }

    #[test]
    fn quartiles_of_seven_leave_the_extremes_out() {
        let q = Quartiles::of(&[1.0, 9.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(
            (q.min, q.p25, q.median, q.p75, q.max),
            (1.0, 2.0, 4.0, 6.0, 9.0)
        );
        assert_eq!(q.half_iqr(), 2.0);
        assert!(Quartiles::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&values, 99.0), Some(99.0));
        assert_eq!(percentile(&values, 100.0), Some(100.0));
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
