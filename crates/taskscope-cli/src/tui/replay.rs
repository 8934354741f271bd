//! Playing a recording back: a position on the recording's clock that moves with the
//! wall clock times a speed, and the model as it was at that position.
//!
//! Pure: the caller passes the wall time that went by. Moving forwards applies the next
//! updates; moving backwards refolds from the start (a recording folds at well over a
//! million updates a second, so this stays interactive for hours of recording).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use taskscope_api::recording::{ReadError, Reader};
use taskscope_api::v1::{self, Update};

use crate::model::Model;
use crate::model::judge::policy::Policy;
use crate::source::recording;

/// Playback speeds `+` and `-` step through.
const SPEEDS: [f64; 9] = [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
const NORMAL_SPEED: usize = 3;

/// A recording being played back.
#[derive(Clone, Debug)]
pub(crate) struct Player {
    updates: Vec<Update>,
    /// Index of the next update to apply.
    next: usize,
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
    /// Reads a recording file (or a directory holding exactly one).
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
        let mut updates = Vec::new();
        let mut truncated = false;
        let reader =
            Reader::open(file).with_context(|| format!("cannot replay {}", file.display()))?;
        for item in reader {
            match item {
                Ok(update) => updates.push(update),
                Err(ReadError::Truncated { .. }) => truncated = true,
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot replay {}", file.display()));
                }
            }
        }
        if updates.is_empty() {
            bail!(
                "{} holds no updates: the process wrote nothing before it stopped",
                file.display()
            );
        }
        let mut player = Self::new(updates);
        player.truncated = truncated;
        Ok(player)
    }

    /// A player over `updates`, playing from the start. Updates out of time order are put
    /// in order (stable), so a damaged clock cannot make the position jump about.
    pub(crate) fn new(mut updates: Vec<Update>) -> Self {
        updates.sort_by_key(|u| u.now_ns);
        let start_ns = updates.first().map_or(0, |u| u.now_ns);
        let end_ns = updates.last().map_or(0, |u| u.now_ns);
        let stall_starts = stall_starts(&updates, Policy::default().stall_threshold_ns);
        Self {
            updates,
            next: 0,
            start_ns,
            end_ns,
            position_ns: start_ns,
            playing: true,
            speed: NORMAL_SPEED,
            stall_starts,
            truncated: false,
        }
    }

    /// Applies everything up to the current position; the model it builds is `model`.
    pub(crate) fn catch_up(&mut self, model: &mut Model) -> bool {
        let mut changed = false;
        while let Some(update) = self.updates.get(self.next) {
            if update.now_ns > self.position_ns {
                break;
            }
            model.apply(update);
            self.next += 1;
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
            *model = Model::new();
            self.next = 0;
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
        self.next >= self.updates.len()
    }

    pub(crate) fn stall_count(&self) -> usize {
        self.stall_starts.len()
    }
}

/// The recording times at which a stall first counts for the judge: once it has lasted
/// `threshold_ns` by the recording's clock, and never for a `spawn_blocking` task (the
/// probe may report those; the judge ignores them). A jump must land where the stall shows.
fn stall_starts(updates: &[Update], threshold_ns: u64) -> Vec<u64> {
    let mut blocking = HashSet::new();
    let mut counted = HashSet::new();
    // Stalls reported but not long enough yet: (id, poll start).
    let mut pending: Vec<(u64, u64)> = Vec::new();
    let mut starts = Vec::new();
    for update in updates {
        for spawned in &update.spawned {
            if spawned.kind == v1::TaskKind::Blocking as i32 {
                blocking.insert(spawned.id);
            }
        }
        for stall in &update.stalls {
            if blocking.contains(&stall.task_id) || counted.contains(&stall.stall_id) {
                continue;
            }
            let ended = stall.phase == v1::StallPhase::Ended as i32;
            if stall.duration_ns >= threshold_ns || ended {
                // Settled: long enough now, or over for good (counted only if it was).
                counted.insert(stall.stall_id);
                pending.retain(|&(id, _)| id != stall.stall_id);
                if stall.duration_ns >= threshold_ns {
                    starts.push(update.now_ns);
                }
            } else if !pending.iter().any(|&(id, _)| id == stall.stall_id) {
                pending.push((stall.stall_id, stall.poll_started_ns));
            }
        }
        pending.retain(|&(id, started)| {
            let long_enough = update.now_ns.saturating_sub(started) >= threshold_ns;
            if long_enough && counted.insert(id) {
                starts.push(update.now_ns);
            }
            !long_enough
        });
    }
    starts.dedup();
    starts
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
