//! The recording decoder against damaged and hostile files: thousands of mutations of a
//! real-looking recording (cuts, bit flips, huge length prefixes, runs of zeros, spliced
//! copies). Whatever the bytes, reading must not panic, must end after at most one item
//! per byte, and must not allocate more than a bounded multiple of the file's size.
//!
//! Seeded, so a failure names the iteration that reproduces it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;

use taskscope_api::recording::{MAX_MESSAGE_LEN, Reader, Writer};
use taskscope_api::v1;

/// Counts the live heap bytes of each thread and their peak, so the test can see what
/// decoding on its own thread cost (per thread: `cargo test` runs other tests beside it in
/// the same process).
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: forwards to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Mutated files read per run: enough to hit every kind of damage many times, in well
/// under a few seconds.
const ITERATIONS: u64 = 5_000;

/// Heap a read of a mutated file may use on top of what it held before, per byte of file,
/// plus a constant (observed: at most 14 bytes per byte, for the smallest files).
const BYTES_PER_FILE_BYTE: usize = 32;
const BASE_BYTES: usize = 64 * 1024;

/// What protobuf can make of a crafted message at worst: two bytes announce an empty
/// nested message that decodes into a whole struct (docs/protocol.md states the bound).
const WORST_EXPANSION: usize = 128;

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A recording with what real ones hold: process info, a snapshot, spawns, statistics,
/// stalls with stacks, ends and the exit.
fn seed() -> Vec<u8> {
    let location = |line| v1::Location {
        file: "src/main.rs".into(),
        line,
        column: 5,
    };
    let mut updates = vec![v1::Update {
        now_ns: 1,
        process: Some(v1::ProcessInfo {
            pid: 4242,
            program: "app".into(),
            args: vec!["--serve".into()],
            ..Default::default()
        }),
        snapshot: v1::SnapshotMark::SnapshotOnly as i32,
        ..Default::default()
    }];
    for i in 1..40u64 {
        updates.push(v1::Update {
            now_ns: i * 100_000_000,
            spawned: vec![v1::TaskSpawned {
                id: i,
                name: format!("task-{i}"),
                location: Some(location(i as u32)),
                ..Default::default()
            }],
            stats: vec![v1::TaskStats {
                id: i,
                polls: i * 3,
                busy_ns: i * 1_000,
                ..Default::default()
            }],
            stalls: vec![v1::Stall {
                stall_id: i,
                task_id: i,
                duration_ns: 250_000_000,
                samples: vec![v1::StackSample {
                    frames: vec![v1::Frame {
                        function: "app::work".into(),
                        location: "src/main.rs:9".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ended: (i % 3 == 0)
                .then(|| v1::TaskEnded {
                    id: i - 1,
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            ..Default::default()
        });
    }
    updates.push(v1::Update {
        now_ns: 5_000_000_000,
        process_exited: true,
        ..Default::default()
    });
    let mut writer = Writer::new(Vec::new()).unwrap();
    writer.write(&updates).unwrap();
    writer.into_inner().unwrap()
}

/// A varint, as length prefixes are written.
fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// One to three kinds of damage, anywhere in the file (the header included).
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(7) {
            0 => bytes.truncate(at),
            1 => {
                for _ in 0..=rng.below(8) {
                    let i = rng.below(bytes.len());
                    if let Some(byte) = bytes.get_mut(i) {
                        *byte ^= 1 << rng.below(8);
                    }
                }
            }
            2 => {
                let huge = match rng.below(4) {
                    0 => u64::MAX,
                    1 => MAX_MESSAGE_LEN,
                    2 => MAX_MESSAGE_LEN + 1,
                    _ => rng.next() % (1 << 40),
                };
                let prefix = varint(huge);
                bytes.splice(at..at, prefix);
            }
            3 => {
                let end = (at + rng.below(4096)).min(bytes.len());
                bytes[at..end].fill(0);
            }
            4 => bytes.extend(std::iter::repeat_n(0, rng.below(8 * 1024))),
            5 => {
                let end = (at + rng.below(512)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                let to = rng.below(bytes.len() + 1);
                bytes.splice(to..to, copy);
            }
            _ => {
                let end = (at + rng.below(64)).min(bytes.len());
                for byte in &mut bytes[at..end] {
                    *byte = rng.next() as u8;
                }
            }
        }
    }
    bytes
}

/// Reads every item; returns how many there were and the heap the read added at its peak.
fn read(bytes: &[u8]) -> (usize, usize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let items = match Reader::new(bytes, PathBuf::from("fuzz.tsrec")) {
        // Counted one by one, not collected: a collection would be the test's memory.
        Ok(reader) => reader.count(),
        Err(_) => 1,
    };
    (items, (PEAK.with(Cell::get) - before).max(0) as usize)
}

#[test]
fn damaged_recordings_are_read_without_panics_hangs_or_unbounded_memory() {
    let seed = seed();
    let (items, _) = read(&seed);
    assert_eq!(items, 41, "the seed itself reads whole");
    let mut rng = Rng(0x7a5c_5c09_e000_0001);
    for iteration in 0..ITERATIONS {
        let bytes = mutate(&seed, &mut rng);
        let (items, heap) = read(&bytes);
        // Every message takes at least its one-byte length prefix.
        assert!(
            items <= bytes.len() + 1,
            "iteration {iteration}: {items} items from {} bytes",
            bytes.len()
        );
        let bound = BASE_BYTES + BYTES_PER_FILE_BYTE * bytes.len();
        assert!(
            heap <= bound,
            "iteration {iteration}: reading {} bytes took {heap} bytes of heap (bound {bound})",
            bytes.len()
        );
    }
}

/// A length prefix that promises far more than the file holds costs what the file holds.
#[test]
fn a_length_prefix_larger_than_the_file_is_not_allocated() {
    let mut bytes = Writer::new(Vec::new()).unwrap().into_inner().unwrap();
    bytes.extend(varint(MAX_MESSAGE_LEN));
    bytes.extend([0x08, 0x01]);
    let (items, heap) = read(&bytes);
    assert_eq!(items, 1, "one error: the message is cut");
    assert!(heap < BASE_BYTES, "{heap} bytes for a 64 MiB promise");
}

/// The worst a crafted file can do within the length limit: a message made only of empty
/// nested messages. Its cost is a bounded multiple of its size.
#[test]
fn empty_nested_messages_cost_a_bounded_multiple_of_their_size() {
    let mut body = Vec::new();
    for _ in 0..50_000 {
        // Field 4 (`spawned`), length-delimited, length 0.
        body.extend([0x22, 0x00]);
    }
    let mut bytes = Writer::new(Vec::new()).unwrap().into_inner().unwrap();
    bytes.extend(varint(body.len() as u64));
    bytes.extend(&body);
    let (items, heap) = read(&bytes);
    assert_eq!(items, 1);
    eprintln!(
        "{} bytes of empty spawns took {heap} bytes of heap",
        bytes.len()
    );
    assert!(
        heap <= WORST_EXPANSION * bytes.len(),
        "{heap} bytes of heap for {} bytes",
        bytes.len()
    );
}
