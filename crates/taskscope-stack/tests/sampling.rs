//! End-to-end: real threads, real signals, real debug info.

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use taskscope_stack::{Activity, Frame, Sampler, Symbolizer, ThreadTarget, classify, user_frames};

mod support;
use support::wait_until_blocked;

const TIMEOUT: Duration = Duration::from_secs(5);
const THIS_FILE: &str = "tests/sampling.rs";

fn sampler() -> Sampler {
    Sampler::install().expect("sampling is available on this machine")
}

fn render(frames: &[Frame]) -> String {
    frames
        .iter()
        .map(|f| format!("  {f} [{:#x}]\n", f.address))
        .collect()
}

/// Samples `target` and symbolizes the whole stack.
fn stack_of(target: &ThreadTarget, symbolizer: &mut Symbolizer) -> Vec<Frame> {
    let addrs = sampler().sample(target, TIMEOUT).expect("sample");
    symbolizer.symbolize(&addrs)
}

/// Spawns `body`, which reports its target and the line of its blocking call.
fn spawn_reporting<F>(body: F) -> (ThreadTarget, u32, JoinHandle<()>)
where
    F: FnOnce(Sender<(ThreadTarget, u32)>) + Send + 'static,
{
    let (tx, rx) = channel();
    let handle = std::thread::spawn(move || body(tx));
    let (target, line) = rx.recv().expect("thread reports in");
    (target, line, handle)
}

/// Asserts that the user-visible frames start with the blocking call (matched by all
/// of `blocking`), followed by `helper` at exactly `line` of this file.
fn assert_blocked_in(frames: &[Frame], blocking: &[&str], helper: &str, line: u32) {
    let shown = user_frames(frames);
    let context = format!(
        "full stack:\n{}user frames:\n{}",
        render(frames),
        render(&shown)
    );
    eprintln!("user frames:\n{}", render(&shown));
    let first = shown
        .first()
        .unwrap_or_else(|| panic!("no user frames\n{context}"));
    assert!(
        blocking
            .iter()
            .all(|part| first.function.to_lowercase().contains(&part.to_lowercase())),
        "blocking frame should name {blocking:?}\n{context}"
    );
    let at = shown
        .iter()
        .position(|f| f.function.contains(helper))
        .unwrap_or_else(|| panic!("helper `{helper}` not among user frames\n{context}"));
    assert_eq!(
        at, 1,
        "helper should directly follow the blocking call\n{context}"
    );
    let h = &shown[at];
    assert!(
        h.file.as_deref().is_some_and(|f| f.ends_with(THIS_FILE)),
        "helper file\n{context}"
    );
    assert_eq!(h.line, Some(line), "line of the blocking call\n{context}");
}

/// Far longer than any test: a sleep cannot be cut short, so a sleeping thread is left
/// asleep (not joined) rather than trusted to still be asleep after a shorter nap.
const NAP: Duration = Duration::from_secs(3600);

#[inline(never)]
fn nap(report: Sender<(ThreadTarget, u32)>) {
    let me = Sampler::current_thread();
    report.send((me, line!() + 1)).unwrap();
    std::thread::sleep(NAP);
}

#[test]
fn sleeping_thread_names_sleep_and_the_line() {
    let (target, line, _asleep) = spawn_reporting(nap);
    wait_until_blocked(target.tid(), "sleep");
    let mut sym = Symbolizer::new();
    let first = stack_of(&target, &mut sym);
    assert_blocked_in(&first, &["std::thread::", "sleep"], "nap", line);

    std::thread::sleep(Duration::from_millis(100));
    let second = stack_of(&target, &mut sym);
    assert_eq!(
        classify(&[first, second.clone()]),
        Some(Activity::Blocked),
        "{}",
        render(&second)
    );
}

#[inline(never)]
fn read_fifo(mut fifo: std::fs::File, report: Sender<(ThreadTarget, u32)>) -> usize {
    let mut buf = [0u8; 16];
    let me = Sampler::current_thread();
    report.send((me, line!() + 1)).unwrap();
    let n = fifo.read(&mut buf).unwrap();
    black_box(n)
}

#[test]
fn fifo_reader_names_read_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fifo");
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    // Read+write open does not wait for a writer; the read then blocks: nobody writes.
    let fifo = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let (target, line, handle) = spawn_reporting(move |tx| {
        read_fifo(fifo, tx);
    });
    wait_until_blocked(target.tid(), "read");
    let mut sym = Symbolizer::new();
    let first = stack_of(&target, &mut sym);
    assert_blocked_in(&first, &["Read", "read"], "read_fifo", line);
    std::thread::sleep(Duration::from_millis(50));
    let second = stack_of(&target, &mut sym);
    assert_eq!(classify(&[first, second]), Some(Activity::Blocked));

    // Unblock the reader (SA_RESTART resumed its read after each sample).
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all(b"x")
        .unwrap();
    handle.join().unwrap();
}

#[inline(never)]
fn take_lock(lock: &Mutex<u64>, report: Sender<(ThreadTarget, u32)>) -> u64 {
    let me = Sampler::current_thread();
    report.send((me, line!() + 1)).unwrap();
    let guard = lock.lock().unwrap();
    *guard
}

#[test]
fn contended_mutex_names_lock_and_the_line() {
    let lock = Arc::new(Mutex::new(7u64));
    let held = lock.lock().unwrap();
    let lock2 = Arc::clone(&lock);
    let (target, line, handle) = spawn_reporting(move |tx| {
        assert_eq!(take_lock(&lock2, tx), 7);
    });
    wait_until_blocked(target.tid(), "futex");
    let mut sym = Symbolizer::new();
    let first = stack_of(&target, &mut sym);
    assert_blocked_in(&first, &["Mutex", "lock"], "take_lock", line);
    let second = stack_of(&target, &mut sym);
    assert_eq!(classify(&[first, second]), Some(Activity::Blocked));
    drop(held);
    handle.join().unwrap();
}

#[inline(never)]
fn mix(acc: u64, i: u64) -> u64 {
    black_box(acc.rotate_left(5) ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

#[inline(never)]
fn fold(acc: u64) -> u64 {
    let mut x = acc;
    for _ in 0..black_box(64) {
        x = black_box(
            x.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        );
    }
    x
}

#[inline(never)]
fn spin(stop: &AtomicBool) -> u64 {
    let mut acc = 0u64;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        acc = fold(mix(acc, i));
        i += 1;
    }
    acc
}

#[test]
fn spinning_thread_is_busy() {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let (target, _, handle) = spawn_reporting(move |tx| {
        tx.send((Sampler::current_thread(), 0)).unwrap();
        black_box(spin(&stop2));
    });
    std::thread::sleep(Duration::from_millis(50));
    let mut sym = Symbolizer::new();
    // Three samples, Busy if any two differ. A tight loop has few instructions and
    // preemption favours some of them, so three identical samples do happen now and
    // then: a watchdog that wants certainty before saying "Blocked" takes a few more.
    let mut samples = Vec::new();
    while samples.len() < 3 || (samples.len() < 10 && classify(&samples) == Some(Activity::Blocked))
    {
        samples.push(stack_of(&target, &mut sym));
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
    let all: String = samples.iter().map(|s| render(s) + "--\n").collect();
    assert_eq!(classify(&samples), Some(Activity::Busy), "{all}");
    for s in &samples {
        assert!(
            user_frames(s).iter().any(|f| f.function.contains("spin")),
            "the loop's function is visible\n{all}"
        );
    }
}

#[inline(never)]
fn sum_to(n: u64) -> u64 {
    let mut s = 0u64;
    for i in 0..n {
        s = s.wrapping_add(black_box(i));
    }
    s
}

#[test]
fn thousands_of_samples_do_not_disturb_workers() {
    const WORKERS: usize = 3;
    const SAMPLES: usize = 5_000;
    // Long enough that samples often land mid-computation, in both build profiles.
    const N: u64 = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut targets = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..WORKERS {
        let stop = Arc::clone(&stop);
        let (tx, rx) = channel();
        handles.push(std::thread::spawn(move || {
            tx.send(Sampler::current_thread()).unwrap();
            // Every sample interrupts a sleep, which then restarts with the default
            // 50 µs timer slack added again: frequent samples would keep workers asleep.
            // SAFETY: plain prctl on the calling thread.
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
            let (mut rounds, mut wrong) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                if sum_to(black_box(N)) != N * (N - 1) / 2 {
                    wrong += 1;
                }
                rounds += 1;
                // Short bursts: samples land both mid-computation and mid-sleep, and a
                // sleeping target answers at once even when the CPUs are oversubscribed.
                if rounds % 8 == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            (rounds, wrong)
        }));
        targets.push(rx.recv().unwrap());
    }
    let sampler = sampler();
    // A second, concurrent sampler: requests must serialize, never mix up replies.
    let rival = {
        let targets = targets.clone();
        let sampler = sampler.clone();
        std::thread::spawn(move || {
            for i in 0..SAMPLES / 5 {
                let addrs = sampler.sample(&targets[i % WORKERS], TIMEOUT).unwrap();
                assert!(!addrs.is_empty());
            }
        })
    };
    let mut sym = Symbolizer::new();
    let started = Instant::now();
    let mut seen_sum_to = 0;
    for i in 0..SAMPLES {
        let addrs = sampler
            .sample(&targets[i % WORKERS], TIMEOUT)
            .unwrap_or_else(|e| panic!("sample {i}: {e}"));
        assert!(!addrs.is_empty());
        // Cached per address, so symbolizing every sample stays cheap.
        let frames = sym.symbolize(&addrs);
        if frames.iter().any(|f| f.function.contains("sum_to")) {
            seen_sum_to += 1;
        }
    }
    rival.join().unwrap();
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let (rounds, wrong) = h.join().unwrap();
        assert!(rounds > 0);
        assert_eq!(wrong, 0, "a sampled worker computed a wrong sum");
    }
    assert!(seen_sum_to > 0, "workers' frames were never seen");
    eprintln!("{SAMPLES} samples in {elapsed:?}, {seen_sum_to} mid-computation");
}

#[test]
fn exited_thread_is_an_error_not_a_hang() {
    let sampler = sampler();
    let target = std::thread::spawn(Sampler::current_thread).join().unwrap();
    assert!(!target.is_alive());
    let started = Instant::now();
    let err = sampler.sample(&target, TIMEOUT).unwrap_err();
    assert_eq!(err, taskscope_stack::SampleError::ThreadGone);
    // Said at once, not after waiting out the timeout (a margin of the whole timeout).
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
}

#[test]
fn blocked_signal_times_out_and_late_delivery_is_harmless() {
    let sampler = sampler();
    let sig = sampler.signal();
    let (go_tx, go_rx) = channel::<()>();
    let (target, _, _asleep) = spawn_reporting(move |tx| {
        // SAFETY: plain sigset manipulation on owned values.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            tx.send((Sampler::current_thread(), 0)).unwrap();
            go_rx.recv().unwrap();
            // The stale request is delivered now; its handler must see it is stale.
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
        std::thread::sleep(NAP);
    });
    let err = sampler
        .sample(&target, Duration::from_millis(100))
        .unwrap_err();
    assert!(
        matches!(err, taskscope_stack::SampleError::Timeout { .. }),
        "{err}"
    );
    go_tx.send(()).unwrap();
    // Asleep only after the signal is unblocked and the stale request handled.
    wait_until_blocked(target.tid(), "sleep");
    let addrs = sampler
        .sample(&target, TIMEOUT)
        .expect("fresh request succeeds");
    assert!(!addrs.is_empty());
}

#[test]
fn handles_are_shareable_across_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    send_sync::<Sampler>();
    send_sync::<ThreadTarget>();
    send::<Symbolizer>();
}

#[inline(never)]
fn descend(depth: u32, report: &Sender<(ThreadTarget, u32)>) -> u32 {
    if depth == 0 {
        report.send((Sampler::current_thread(), 0)).unwrap();
        std::thread::sleep(NAP);
        return 0;
    }
    black_box(descend(black_box(depth - 1), report)) + 1
}

#[test]
fn deep_stacks_are_cut_at_the_depth_limit() {
    let (target, _, _asleep) = spawn_reporting(|tx| {
        black_box(descend(300, &tx));
    });
    wait_until_blocked(target.tid(), "sleep");
    let addrs = sampler().sample(&target, TIMEOUT).unwrap();
    assert_eq!(addrs.len(), 128, "walk stops at the depth limit");
    let frames = Symbolizer::new().symbolize(&addrs);
    let deep = frames
        .iter()
        .filter(|f| f.function.contains("descend"))
        .count();
    assert!(deep > 100, "{}", render(&frames));
}

#[test]
fn threads_exiting_while_sampled_give_errors_not_hangs() {
    let sampler = sampler();
    for _ in 0..100 {
        let (tx, rx) = channel();
        let handle = std::thread::spawn(move || {
            tx.send(Sampler::current_thread()).unwrap();
            black_box(sum_to(black_box(1_000)));
        });
        let target = rx.recv().unwrap();
        let started = Instant::now();
        match sampler.sample(&target, TIMEOUT) {
            Ok(addrs) => assert!(!addrs.is_empty()),
            Err(taskscope_stack::SampleError::ThreadGone) => {}
            Err(taskscope_stack::SampleError::ForeignStack) => {} // caught mid-exit
            Err(e) => panic!("unexpected: {e}"),
        }
        // Answered, or refused, without waiting out the timeout.
        assert!(
            started.elapsed() < TIMEOUT,
            "sample waited out its timeout: {:?}",
            started.elapsed()
        );
        handle.join().unwrap();
    }
}
