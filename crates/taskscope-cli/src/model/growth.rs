//! Live tasks per spawn site over time: the evidence for a `growth` finding and the data of
//! the dashboard's per-site sparkline.

use super::LocationId;

/// How many points a site's series keeps. When full, every other point is dropped, so an
/// arbitrarily long watch costs a fixed amount of memory per site and keeps its shape.
const MAX_POINTS: usize = 256;

/// Live count of one spawn site, sampled whenever it changed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Series {
    /// `(probe time, live tasks)`, in time order.
    points: Vec<(u64, u32)>,
}

impl Series {
    fn record(&mut self, now_ns: u64, live: u32) {
        match self.points.last_mut() {
            Some(last) if last.0 == now_ns => last.1 = live,
            _ => {
                if self.points.len() == MAX_POINTS {
                    let mut keep = false;
                    // Keep the newest point of each pair, so the latest value survives.
                    self.points.retain(|_| {
                        keep = !keep;
                        !keep
                    });
                }
                self.points.push((now_ns, live));
            }
        }
    }

    /// Live count at `t_ns`: the last value recorded at or before it (0 before the first).
    pub(crate) fn at(&self, t_ns: u64) -> u32 {
        let after = self.points.partition_point(|&(t, _)| t <= t_ns);
        after.checked_sub(1).map_or(0, |i| self.points[i].1)
    }

    #[allow(
        dead_code,
        reason = "read API the dashboard renders from; check does not need it"
    )]
    pub(crate) fn points(&self) -> &[(u64, u32)] {
        &self.points
    }
}

/// Live task counts per spawn site, indexed by [`LocationId`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Growth {
    live: Vec<u32>,
    series: Vec<Series>,
}

impl Growth {
    pub(crate) fn enter(&mut self, site: LocationId, now_ns: u64) {
        self.change(site, now_ns, |live| live.saturating_add(1));
    }

    pub(crate) fn leave(&mut self, site: LocationId, now_ns: u64) {
        self.change(site, now_ns, |live| live.saturating_sub(1));
    }

    fn change(&mut self, site: LocationId, now_ns: u64, f: impl FnOnce(u32) -> u32) {
        let index = site.0 as usize;
        if self.live.len() <= index {
            self.live.resize(index + 1, 0);
            self.series.resize_with(index + 1, Series::default);
        }
        self.live[index] = f(self.live[index]);
        self.series[index].record(now_ns, self.live[index]);
    }

    /// Live tasks from `site` now.
    #[allow(
        dead_code,
        reason = "read API the dashboard renders from; check does not need it"
    )]
    pub(crate) fn live(&self, site: LocationId) -> u32 {
        self.live.get(site.0 as usize).copied().unwrap_or(0)
    }

    /// Every site with a series, with it.
    pub(crate) fn sites(&self) -> impl Iterator<Item = (LocationId, &Series)> {
        self.series
            .iter()
            .enumerate()
            .map(|(index, series)| (LocationId(index as u32), series))
    }
}

/// A site's rise through a window, when it rose in every quarter of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rise {
    pub(crate) from: u32,
    pub(crate) to: u32,
}

/// Smallest net rise that counts: a handful of extra connections is load, not a leak.
pub(crate) const MIN_RISE: u32 = 10;

/// Whether `series` kept rising through `[start_ns, end_ns]`: higher at the end of each
/// quarter than at the end of the one before, and at least [`MIN_RISE`] higher overall.
/// Requiring every quarter filters out a burst that happens to straddle the window.
pub(crate) fn kept_rising(series: &Series, start_ns: u64, end_ns: u64) -> Option<Rise> {
    if end_ns <= start_ns {
        return None;
    }
    let span = end_ns - start_ns;
    let counts: Vec<u32> = (0..=4u64)
        .map(|quarter| series.at(start_ns + (u128::from(span) * u128::from(quarter) / 4) as u64))
        .collect();
    let rising = counts.windows(2).all(|pair| pair[1] > pair[0]);
    let (from, to) = (counts[0], counts[4]);
    (rising && to - from >= MIN_RISE).then_some(Rise { from, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(u64, u32)]) -> Series {
        let mut series = Series::default();
        for &(t, live) in points {
            series.record(t, live);
        }
        series
    }

    #[test]
    fn a_steady_climb_is_growth() {
        let points: Vec<_> = (0..=100).map(|i| (i * 10, i as u32)).collect();
        assert_eq!(
            kept_rising(&series(&points), 0, 1000),
            Some(Rise { from: 0, to: 100 })
        );
    }

    #[test]
    fn a_burst_then_a_plateau_is_not() {
        let s = series(&[(0, 5), (100, 200), (900, 200)]);
        assert_eq!(kept_rising(&s, 0, 1000), None);
    }

    #[test]
    fn a_small_rise_is_load_not_growth() {
        let s = series(&[(0, 1), (300, 2), (550, 3), (800, 4), (1000, 5)]);
        assert_eq!(kept_rising(&s, 0, 1000), None);
    }

    #[test]
    fn a_long_series_stays_bounded_and_keeps_its_latest_value() {
        let points: Vec<_> = (0..10_000).map(|i| (i, i as u32)).collect();
        let s = series(&points);
        assert!(s.points().len() <= MAX_POINTS);
        assert_eq!(s.points().last(), Some(&(9_999, 9_999)));
        assert_eq!(s.at(20_000), 9_999);
    }
}
