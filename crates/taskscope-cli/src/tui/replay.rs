//! Playing a recording back: a position on the recording's clock that moves with the
//! wall clock times a speed, and the model as it was at that position.
//!
//! Pure but for reading the file: the caller passes the wall time that went by. The
//! recording is read as a [`tape`]: moving forwards applies the next updates; moving
//! backwards winds back to the closest checkpoint and refolds from there. Memory does not
//! grow with the file's size.

mod tape;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use taskscope_api::recording::Reader;
use taskscope_api::v1::{self, Update};

use self::tape::{Scan, Source, Tape};
use crate::model::Model;
use crate::model::judge::policy::Policy;
use crate::source::recording;

/// Playback speeds `+` and `-` step through.
const SPEEDS: [f64; 9] = [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
const NORMAL_SPEED: usize = 3;

/// A recording being played back.
#[derive(Debug)]
pub(crate) struct Player {
    tape: Tape,
    start_ns: u64,
    end_ns: u64,
    position_ns: u64,
    playing: bool,
    speed: usize,
    /// Recording times at which a stall was first reported, ascending.
    stall_starts: Vec<u64>,
    /// The file ended mid-message (the recorded process was killed).
    pub(crate) truncated: bool,
}

impl Player {
    /// Opens a recording file (or a directory holding exactly one) and reads it through
    /// once, to check it and index it.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let files = recording::files(path)?;
        let file = match files.as_slice() {
            [file] => file,
            [] => bail!("{} holds no .tsrec recordings", path.display()),
            _ => bail!(
                "{} holds {} recordings; replay one of them: {}",
                path.display(),
                files.len(),
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let context = || format!("cannot replay {}", file.display());
        let size = std::fs::metadata(file).with_context(context)?.len();
        let reader = Reader::open(file)
            .with_context(context)?
            .map_source(|source| Box::new(source) as Box<dyn Source>);
        let mut stalls = StallStarts::new(Policy::default().stall_threshold_ns);
        let scan = Tape::scan(reader, size, |update, time_ns| {
            stalls.observe(update, time_ns)
        })
        .with_context(context)?;
        Self::from_scan(scan, stalls.into_starts()).with_context(|| {
            format!(
                "{} holds no updates: the process wrote nothing before it stopped",
                file.display()
            )
        })
    }

    /// A player over `updates` (put in time order, as a probe writes them: fixtures are
    /// built by topic), playing from the start.
    #[cfg(test)]
    pub(crate) fn new(mut updates: Vec<Update>) -> Self {
        updates.sort_by_key(|u| u.now_ns);
        let mut stalls = StallStarts::new(Policy::default().stall_threshold_ns);
        let scan = Tape::in_memory(&updates, |update, time_ns| stalls.observe(update, time_ns));
        Self::from_scan(scan, stalls.into_starts()).expect("updates to play")
    }

    fn from_scan(scan: Scan, stall_starts: Vec<u64>) -> Option<Self> {
        let (start_ns, end_ns) = scan.span_ns?;
        Some(Self {
            tape: scan.tape,
            start_ns,
            end_ns,
            position_ns: start_ns,
            playing: true,
            speed: NORMAL_SPEED,
            stall_starts,
            truncated: scan.truncated,
        })
    }

    /// Applies everything up to the current position; the model it builds is `model`.
    pub(crate) fn catch_up(&mut self, model: &mut Model) -> bool {
        let mut changed = false;
        while let Some(update) = self.tape.next_until(self.position_ns) {
            model.apply(&update);
            changed = true;
        }
        if changed && self.at_end() {
            model.finish();
        }
        changed
    }

    /// Moves the position by `wall` times the speed, when playing. Stops at the end.
    pub(crate) fn advance(&mut self, wall: Duration, model: &mut Model) -> bool {
        if !self.playing {
            return false;
        }
        let step = (wall.as_nanos() as f64 * SPEEDS[self.speed]) as u64;
        self.position_ns = self.position_ns.saturating_add(step).min(self.end_ns);
        if self.position_ns >= self.end_ns {
            self.playing = false;
        }
        self.catch_up(model)
    }

    /// Jumps to `to_ns` (clamped to the recording).
    pub(crate) fn seek(&mut self, to_ns: u64, model: &mut Model) {
        let to_ns = to_ns.clamp(self.start_ns, self.end_ns);
        if to_ns < self.position_ns {
            self.tape.rewind(to_ns, model);
        }
        self.position_ns = to_ns;
        self.catch_up(model);
    }

    /// Moves by `delta_ns` (negative: back).
    pub(crate) fn seek_by(&mut self, delta_ns: i64, model: &mut Model) {
        let to = self.position_ns.saturating_add_signed(delta_ns);
        self.seek(to, model);
    }

    /// Jumps to the next stall's first report and pauses there; false when there is none.
    pub(crate) fn next_stall(&mut self, model: &mut Model) -> bool {
        let after = self
            .stall_starts
            .partition_point(|&t| t <= self.position_ns);
        match self.stall_starts.get(after) {
            Some(&t) => {
                self.seek(t, model);
                self.playing = false;
                true
            }
            None => false,
        }
    }

    /// Jumps to the previous stall's first report and pauses there.
    pub(crate) fn prev_stall(&mut self, model: &mut Model) -> bool {
        let before = self.stall_starts.partition_point(|&t| t < self.position_ns);
        match before.checked_sub(1).map(|i| self.stall_starts[i]) {
            Some(t) => {
                self.seek(t, model);
                self.playing = false;
                true
            }
            None => false,
        }
    }

    /// Play/pause; playing from the end starts over.
    pub(crate) fn toggle(&mut self, model: &mut Model) {
        if !self.playing && self.at_end() {
            self.seek(self.start_ns, model);
        }
        self.playing = !self.playing;
    }

    pub(crate) fn faster(&mut self) {
        self.speed = (self.speed + 1).min(SPEEDS.len() - 1);
    }

    pub(crate) fn slower(&mut self) {
        self.speed = self.speed.saturating_sub(1);
    }

    pub(crate) fn playing(&self) -> bool {
        self.playing
    }

    pub(crate) fn speed(&self) -> f64 {
        SPEEDS[self.speed]
    }

    /// Position on the recording's clock (probe time).
    pub(crate) fn position_ns(&self) -> u64 {
        self.position_ns
    }

    /// Time into the recording.
    pub(crate) fn elapsed_ns(&self) -> u64 {
        self.position_ns - self.start_ns
    }

    pub(crate) fn length_ns(&self) -> u64 {
        self.end_ns - self.start_ns
    }

    pub(crate) fn at_end(&self) -> bool {
        self.tape.at_end()
    }

    pub(crate) fn stall_count(&self) -> usize {
        self.stall_starts.len()
    }
}

/// The recording times at which a stall first counts for the judge: once it has lasted
/// the threshold by the recording's clock, and never for a `spawn_blocking` task (the
/// probe may report those; the judge ignores them). A jump must land where the stall shows.
/// Built update by update while the tape is scanned.
struct StallStarts {
    threshold_ns: u64,
    blocking: HashSet<u64>,
    counted: HashSet<u64>,
    /// Stalls reported but not long enough yet: (id, poll start).
    pending: Vec<(u64, u64)>,
    starts: Vec<u64>,
}

impl StallStarts {
    fn new(threshold_ns: u64) -> Self {
        Self {
            threshold_ns,
            blocking: HashSet::new(),
            counted: HashSet::new(),
            pending: Vec::new(),
            starts: Vec::new(),
        }
    }

    fn observe(&mut self, update: &Update, now_ns: u64) {
        let threshold_ns = self.threshold_ns;
        for spawned in &update.spawned {
            if spawned.kind == v1::TaskKind::Blocking as i32 {
                self.blocking.insert(spawned.id);
            }
        }
        for stall in &update.stalls {
            if self.blocking.contains(&stall.task_id) || self.counted.contains(&stall.stall_id) {
                continue;
            }
            let ended = stall.phase == v1::StallPhase::Ended as i32;
            if stall.duration_ns >= threshold_ns || ended {
                // Settled: long enough now, or over for good (counted only if it was).
                self.counted.insert(stall.stall_id);
                self.pending.retain(|&(id, _)| id != stall.stall_id);
                if stall.duration_ns >= threshold_ns {
                    self.starts.push(now_ns);
                }
            } else if !self.pending.iter().any(|&(id, _)| id == stall.stall_id) {
                self.pending.push((stall.stall_id, stall.poll_started_ns));
            }
        }
        let (counted, starts) = (&mut self.counted, &mut self.starts);
        self.pending.retain(|&(id, started)| {
            let long_enough = now_ns.saturating_sub(started) >= threshold_ns;
            if long_enough && counted.insert(id) {
                starts.push(now_ns);
            }
            !long_enough
        });
    }

    fn into_starts(mut self) -> Vec<u64> {
        self.starts.dedup();
        self.starts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture::{MS, at, spawned, stall, start};
    use taskscope_api::v1;

    fn recording() -> Vec<Update> {
        let mut spawn = at(100 * MS);
        spawn.spawned.push(spawned(1, "src/main.rs:3:5"));
        let mut stalled = at(2_000 * MS);
        stalled
            .stalls
            .push(stall(7, 1, v1::StallPhase::Started, 100 * MS));
        let mut ended = at(2_500 * MS);
        ended
            .stalls
            .push(stall(7, 1, v1::StallPhase::Ended, 600 * MS));
        vec![start(42, "app"), spawn, stalled, ended, at(5_000 * MS)]
    }

    #[test]
    fn plays_at_its_speed_and_stops_at_the_end() {
        let mut model = Model::new();
        let mut player = Player::new(recording());
        player.catch_up(&mut model);
        assert_eq!(model.task_count(), 0);
        player.advance(Duration::from_millis(150), &mut model);
        assert_eq!(model.task_count(), 1);
        player.faster();
        player.advance(Duration::from_secs(10), &mut model);
        assert_eq!(player.elapsed_ns(), 5_000 * MS);
        assert!(!player.playing());
    }

    #[test]
    fn jumps_skip_what_the_judge_does_not_count() {
        let mut updates = recording();
        let mut worker = spawned(2, "tokio/src/runtime/blocking/pool.rs:1:1");
        worker.kind = v1::TaskKind::Blocking as i32;
        updates[1].spawned.push(worker);
        // A stall of the blocking task, and one reported below the judge's threshold.
        updates[1]
            .stalls
            .push(stall(8, 2, v1::StallPhase::Started, 100 * MS));
        updates[3]
            .stalls
            .push(stall(9, 1, v1::StallPhase::Ended, 50 * MS));
        let player = Player::new(updates);
        assert_eq!(player.stall_starts, [2_000 * MS]);
    }

    #[test]
    fn jumps_between_stalls_and_seeks_back_by_refolding() {
        let mut model = Model::new();
        let mut player = Player::new(recording());
        assert!(player.next_stall(&mut model));
        assert_eq!(player.position_ns(), 2_000 * MS);
        assert_eq!(model.stalls().count(), 1);
        assert!(!player.next_stall(&mut model));
        player.seek_by(-1_000_000_000, &mut model);
        assert_eq!(model.stalls().count(), 0);
        assert_eq!(model.task_count(), 1);
        assert!(player.next_stall(&mut model));
        player.seek(u64::MAX, &mut model);
        assert!(player.prev_stall(&mut model));
        assert_eq!(player.position_ns(), 2_000 * MS);
    }
}
