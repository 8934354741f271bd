//! Installation respects signals that other code already handles. Its own test binary:
//! the choice is made once per process.

use std::time::Duration;

use taskscope_stack::Sampler;

extern "C" fn someone_elses_handler(_: libc::c_int) {}

#[test]
fn skips_a_signal_that_already_has_a_handler_and_installs_once() {
    let taken = libc::SIGRTMIN() + 5;
    // SAFETY: installing a no-op handler with a zeroed (empty-mask) sigaction.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = someone_elses_handler as *const () as usize;
        assert_eq!(libc::sigaction(taken, &sa, std::ptr::null_mut()), 0);
    }
    let sampler = Sampler::install().unwrap();
    assert_ne!(sampler.signal(), taken);
    assert!(sampler.signal() > taken && sampler.signal() < libc::SIGRTMAX());
    assert_eq!(Sampler::install().unwrap().signal(), sampler.signal());

    // The other handler is still there, untouched.
    // SAFETY: query only.
    let current = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(taken, std::ptr::null(), &mut old);
        old.sa_sigaction
    };
    assert_eq!(current, someone_elses_handler as *const () as usize);

    // A thread may sample itself: the handler runs as the signal is sent.
    let addrs = sampler
        .sample(&Sampler::current_thread(), Duration::from_secs(5))
        .unwrap();
    assert!(addrs.len() > 3);
}
