//! A quick poll on an overloaded machine: the runtime's thread shares one CPU with six
//! busy threads, so a poll that computes for 25 ms of CPU time takes about 200 ms of wall
//! time. That is the machine's doing: the probe must not call it the code's stall.
//!
//! `starved POLL_CPU_MS BUSY_THREADS BUSY_CPU_MS` sets the poll's CPU time and the busy
//! threads' (25, 6 and 150 without arguments). Busy threads that stop halfway through the
//! poll make its share of waiting uneven: high at its start, none at its end.

use std::time::Duration;

/// Keeps the calling thread on CPU 0 only.
fn pin_to_first_cpu() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    // SAFETY: a timespec is plain integers, for which all zeroes is a valid value.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: clock_gettime writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Computes until this thread has had `cpu` of CPU time, however long that takes.
fn compute_for(cpu: Duration) {
    let until = thread_cpu_time() + cpu;
    let mut x = 1u64;
    while thread_cpu_time() < until {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// The `n`th argument as milliseconds or a count, `default` without one.
fn argument(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .map_or(default, |a| a.parse().expect("a whole number"))
}

#[taskscope::main(flavor = "current_thread")]
async fn main() {
    let poll_cpu = Duration::from_millis(argument(1, 25));
    let busy_threads = argument(2, 6);
    let busy_cpu = Duration::from_millis(argument(3, 150));
    pin_to_first_cpu();
    for _ in 0..busy_threads {
        // Left to end with the process: joining them here would block the runtime.
        std::thread::spawn(move || {
            pin_to_first_cpu();
            compute_for(busy_cpu);
        });
    }
    let quick = tokio::spawn(async move { compute_for(poll_cpu) }); // FAULT: starved
    quick.await.unwrap();
    println!("starved: done");
}
