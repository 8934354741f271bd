//! A recording read as a tape: forwards from the file, one update at a time, and wound
//! back to a checkpoint to go back in time. The updates are never all in memory, so a
//! replay costs the same whatever the file's size: the model being shown, the reader's
//! buffer, and a few checkpoints.
//!
//! Time on the tape is the recording's clock made monotone: an update stamped earlier than
//! one before it counts as happening with it, so a damaged clock cannot make the position
//! jump about.

use std::io::{Read, Seek};

use taskscope_api::recording::{ReadError, Reader};
use taskscope_api::v1::Update;

use crate::model::Model;

/// Checkpoints a tape spreads over the file (by bytes): going back re-reads at most about
/// this fraction of the file.
const CHECKPOINTS: u64 = 16;

/// Checkpoints hold copies of the model; together they hold at most this many tasks
/// (tens of MB). Past it, going back re-reads from the last checkpoint that fit.
const CHECKPOINT_TASKS: usize = 200_000;

/// What a tape reads: the file, or bytes in tests.
pub(crate) trait Source: Read + Seek + Send {}
impl<T: Read + Seek + Send> Source for T {}

/// The model as it was before update `index`, and where that update starts.
struct Checkpoint {
    offset: u64,
    index: u64,
    clock_ns: u64,
    model: Model,
}

pub(crate) struct Tape {
    reader: Reader<Box<dyn Source>>,
    /// The start of the first update.
    first_offset: u64,
    /// Updates the scan found complete. A recording still being written grows, and a
    /// damaged tail is never reached again: reading stops here.
    len: u64,
    /// Index of the next update to read.
    next: u64,
    clock_ns: u64,
    /// An update read whose time has not come yet, with its time.
    pending: Option<(u64, Update)>,
    checkpoints: Vec<Checkpoint>,
}

/// What a scan of the whole tape learned.
pub(crate) struct Scan {
    pub(crate) tape: Tape,
    /// Time of the first and the last update; `None` for a tape without updates.
    pub(crate) span_ns: Option<(u64, u64)>,
    /// The file ended mid-message (the recorded process was killed).
    pub(crate) truncated: bool,
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tape")
            .field("len", &self.len)
            .field("next", &self.next)
            .field("checkpoints", &self.checkpoints.len())
            .finish_non_exhaustive()
    }
}

impl Tape {
    /// Reads the tape once to the end: checks every message, counts them, places the
    /// checkpoints, and shows each update with its time to `observe`. `size` is the
    /// file's length in bytes. A cut last message ends the tape; any other damage is an
    /// error.
    pub(crate) fn scan(
        mut reader: Reader<Box<dyn Source>>,
        size: u64,
        mut observe: impl FnMut(&Update, u64),
    ) -> Result<Scan, ReadError> {
        let first_offset = reader.offset();
        let spacing = (size / CHECKPOINTS).max(1);
        let mut model = Model::new();
        let mut checkpoints = Vec::new();
        let mut tasks_kept = 0;
        let (mut len, mut clock_ns, mut first_ns, mut truncated) = (0, 0, None, false);
        loop {
            let offset = reader.offset();
            let update = match reader.next() {
                None => break,
                Some(Ok(update)) => update,
                Some(Err(ReadError::Truncated { .. })) => {
                    truncated = true;
                    break;
                }
                Some(Err(error)) => return Err(error),
            };
            let due = checkpoints
                .last()
                .map_or(first_offset, |c: &Checkpoint| c.offset)
                + spacing;
            if offset >= due && tasks_kept + model.task_count() <= CHECKPOINT_TASKS {
                tasks_kept += model.task_count();
                checkpoints.push(Checkpoint {
                    offset,
                    index: len,
                    clock_ns,
                    model: model.clone(),
                });
            }
            clock_ns = clock_ns.max(update.now_ns);
            first_ns.get_or_insert(clock_ns);
            observe(&update, clock_ns);
            model.apply(&update);
            len += 1;
        }
        let mut tape = Self {
            reader,
            first_offset,
            len,
            next: 0,
            clock_ns: 0,
            pending: None,
            checkpoints,
        };
        tape.restart(None);
        Ok(Scan {
            tape,
            span_ns: first_ns.map(|first| (first, clock_ns)),
            truncated,
        })
    }

    /// A tape over `updates` written as a recording in memory.
    #[cfg(test)]
    pub(crate) fn in_memory(updates: &[Update], observe: impl FnMut(&Update, u64)) -> Scan {
        let mut writer = taskscope_api::recording::Writer::new(Vec::new()).unwrap();
        writer.write(updates).unwrap();
        let bytes = writer.into_inner().unwrap();
        let size = bytes.len() as u64;
        let source: Box<dyn Source> = Box::new(std::io::Cursor::new(bytes));
        let reader = Reader::new(source, "memory.tsrec".into()).unwrap();
        Self::scan(reader, size, observe).unwrap()
    }

    /// The next update if its time is at or before `position_ns`.
    pub(crate) fn next_until(&mut self, position_ns: u64) -> Option<Update> {
        if self.pending.is_none() && self.next < self.len {
            match self.reader.next() {
                Some(Ok(update)) => {
                    self.clock_ns = self.clock_ns.max(update.now_ns);
                    self.pending = Some((self.clock_ns, update));
                }
                // Read fine once; if the file changed since, stop where it broke.
                _ => self.len = self.next,
            }
        }
        match self.pending.take() {
            Some((time_ns, update)) if time_ns <= position_ns => {
                self.next += 1;
                Some(update)
            }
            other => {
                self.pending = other;
                None
            }
        }
    }

    /// Whether every update has been read.
    pub(crate) fn at_end(&self) -> bool {
        self.next >= self.len
    }

    /// Winds back to the latest checkpoint at or before `to_ns` and puts its model in
    /// `model`; reading on from there brings the model to `to_ns`.
    pub(crate) fn rewind(&mut self, to_ns: u64, model: &mut Model) {
        let at = self.checkpoints.partition_point(|c| c.clock_ns <= to_ns);
        let checkpoint = at.checked_sub(1);
        *model = checkpoint.map_or_else(Model::new, |i| self.checkpoints[i].model.clone());
        self.restart(checkpoint);
    }

    fn restart(&mut self, checkpoint: Option<usize>) {
        let (offset, index, clock_ns) = match checkpoint.map(|i| &self.checkpoints[i]) {
            Some(c) => (c.offset, c.index, c.clock_ns),
            None => (self.first_offset, 0, 0),
        };
        self.pending = None;
        self.next = index;
        self.clock_ns = clock_ns;
        if self.reader.seek_to(offset).is_err() {
            self.len = index;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixture::{MS, at, spawned, start};

    /// A process spawning a task every 10 ms for 10 s.
    fn spawning() -> Vec<Update> {
        let mut updates = vec![start(42, "app")];
        for i in 1..=1_000u64 {
            let mut update = at(i * 10 * MS);
            update.spawned.push(spawned(i, "src/main.rs:3:5"));
            updates.push(update);
        }
        updates
    }

    fn play_to(tape: &mut Tape, position_ns: u64, model: &mut Model) {
        while let Some(update) = tape.next_until(position_ns) {
            model.apply(&update);
        }
    }

    #[test]
    fn going_back_to_a_checkpoint_gives_the_model_a_fold_from_the_start_gives() {
        let mut tape = Tape::in_memory(&spawning(), |_, _| {}).tape;
        assert!(tape.checkpoints.len() >= 8, "{tape:?}");
        let mut model = Model::new();
        play_to(&mut tape, 9_000 * MS, &mut model);
        assert_eq!(model.task_count(), 900);
        tape.rewind(4_005 * MS, &mut model);
        assert!(tape.next > 0, "wound back to a checkpoint, not the start");
        play_to(&mut tape, 4_005 * MS, &mut model);
        assert_eq!(model.task_count(), 400);
        assert_eq!(model.now_ns(), 4_000 * MS);
        tape.rewind(0, &mut model);
        assert_eq!(model.task_count(), 0);
        play_to(&mut tape, u64::MAX, &mut model);
        assert_eq!(model.task_count(), 1_000);
        assert!(tape.at_end());
    }

    #[test]
    fn an_update_stamped_before_the_one_ahead_of_it_comes_with_it() {
        let mut late = at(100 * MS);
        late.spawned.push(spawned(2, "src/late.rs:1:1"));
        let updates = [start(42, "app"), at(500 * MS), late, at(900 * MS)];
        let mut times = Vec::new();
        let scan = Tape::in_memory(&updates, |_, time_ns| times.push(time_ns));
        assert_eq!(times, [0, 500 * MS, 500 * MS, 900 * MS]);
        assert_eq!(scan.span_ns, Some((0, 900 * MS)));
        let mut tape = scan.tape;
        let mut model = Model::new();
        play_to(&mut tape, 400 * MS, &mut model);
        assert_eq!(model.task_count(), 0);
        play_to(&mut tape, 500 * MS, &mut model);
        assert_eq!(model.task_count(), 1);
    }
}
