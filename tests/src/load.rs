//! A loaded machine, made on purpose: a command pinned to one CPU, and busy threads of
//! the test's own pinned to the same CPU beside it. The app's workers then run in the
//! gaps the busy threads leave, so its run queues fill up between two turns, as they do
//! on a CI machine shared with a build.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// The CPU the app and the busy threads share.
pub const SHARED_CPU: usize = 0;

fn pin_to(cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes one bit of it and
    // sched_setaffinity only reads it, for the calling thread (0).
    let status = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes `command` start pinned to [`SHARED_CPU`], with every thread it starts.
pub fn pinned(command: &mut Command) -> &mut Command {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: `sched_setaffinity` is a plain system call, and
    // `last_os_error` reads errno; nothing allocates.
    unsafe { command.pre_exec(|| pin_to(SHARED_CPU)) }
}

/// Threads spinning on [`SHARED_CPU`] until dropped.
pub struct BusyThreads {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl BusyThreads {
    /// Starts `count` busy threads on [`SHARED_CPU`].
    pub fn start(count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..count)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    pin_to(SHARED_CPU).expect("a thread can be pinned to CPU 0");
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for BusyThreads {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
