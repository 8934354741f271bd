//! Deciding which frames a user needs to see, and whether a stalled thread is waiting
//! or computing.
//!
//! A stall stack is mostly machinery: thread start-up, the runtime's scheduler, the
//! probe, std's internals, libc. What answers "where is my code stuck" is the user's
//! own frames plus the one library frame the user's code called into — the public API
//! that blocks (`std::thread::sleep`, `<std::fs::File as std::io::Read>::read`,
//! `std::sync::Mutex::lock`, ...). Everything else is hidden by [`user_frames`].

use crate::Frame;

/// Crates whose frames are hidden (machinery, not the user's code).
const HIDDEN_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "tokio",
    "tokio_util",
    "tracing",
    "tracing_core",
    "tracing_subscriber",
    "tracing_futures",
    "futures",
    "futures_core",
    "futures_util",
    "futures_task",
    "futures_executor",
    "taskscope",
    "taskscope_stack",
    "taskscope_api",
    "libc",
];

/// Whether the user needs to see `frame`'s source. The result is the frames of the
/// user's code, innermost first, preceded by the library frame they called into
/// (if the innermost frame is not already theirs). Hidden: std, core, alloc, tokio,
/// tracing, futures, taskscope and native (libc, vDSO) frames.
///
/// If no frame belongs to the user, the innermost frame with a Rust path is returned
/// alone, so there is still something to show.
pub fn user_frames(frames: &[Frame]) -> Vec<Frame> {
    let library: Vec<bool> = frames.iter().map(is_library).collect();
    let Some(first_user) = innermost_user_frame(frames) else {
        return frames
            .iter()
            .find(|f| f.function.contains("::"))
            .cloned()
            .into_iter()
            .collect();
    };
    let mut out = Vec::new();
    if first_user > 0 {
        out.push(frames[first_user - 1].clone());
    }
    out.extend(
        frames
            .iter()
            .zip(&library)
            .skip(first_user)
            .filter(|(_, lib)| !**lib)
            .map(|(f, _)| f.clone()),
    );
    out
}

/// The position of the innermost frame of the user's own code: in an await chain, the
/// `.await` a task is parked on; in a stall stack, the user's call that blocks.
pub fn innermost_user_frame(frames: &[Frame]) -> Option<usize> {
    frames.iter().position(|frame| !is_library(frame))
}

/// What a stalled thread is doing, judged from several samples of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activity {
    /// The same place every time: waiting in a blocking call (sleep, I/O, a lock).
    Blocked,
    /// Somewhere different each time: computing.
    Busy,
}

/// Classifies a stall from 2+ symbolized samples of the same thread taken at different
/// times (pass whole stacks from [`Symbolizer::symbolize`](crate::Symbolizer::symbolize),
/// not [`user_frames`] output). Returns `None` for fewer than two non-empty samples.
///
/// `Blocked` means every sample has the same interrupted instruction *and* the same
/// user-visible frames (function, file, line, call address): a thread parked in a system
/// call does not move. Any difference means `Busy`. Take 3 samples some tens of
/// milliseconds apart; one difference is enough. A tight loop of a few instructions
/// can land on the same instruction three times by chance (preemption favours some
/// instructions), so before acting on `Blocked`, a caller that needs certainty takes a
/// few more samples (up to ~10) and classifies them all.
pub fn classify(samples: &[Vec<Frame>]) -> Option<Activity> {
    if samples.len() < 2 || samples.iter().any(Vec::is_empty) {
        return None;
    }
    let signature = |s: &Vec<Frame>| {
        let visible: Vec<_> = user_frames(s)
            .into_iter()
            .map(|f| (f.function, f.file, f.line, f.address))
            .collect();
        (s[0].address, visible)
    };
    let first = signature(&samples[0]);
    if samples[1..].iter().all(|s| signature(s) == first) {
        Some(Activity::Blocked)
    } else {
        Some(Activity::Busy)
    }
}

fn is_library(frame: &Frame) -> bool {
    let name = frame.function.as_str();
    match leading_crate(name) {
        Some(krate) => HIDDEN_CRATES.contains(&krate),
        // No path: a native symbol (libc, vDSO), an unresolved address, or a short
        // DWARF name. Only a Rust source file outside the toolchain makes it the user's.
        None => match &frame.file {
            Some(file) => !file.ends_with(".rs") || is_library_source(file),
            None => true,
        },
    }
}

/// Sources of std (remapped to `/rustc/<hash>/library/...`) and of hidden crates.
fn is_library_source(file: &str) -> bool {
    if file.contains("/rustc/") || file.contains("/lib/rustlib/") {
        return true;
    }
    file.split('/').any(|dir| {
        dir.rsplit_once('-').is_some_and(|(krate, version)| {
            version.starts_with(|c: char| c.is_ascii_digit())
                && HIDDEN_CRATES.contains(&krate.replace('-', "_").as_str())
        })
    })
}

/// The crate a demangled Rust name belongs to: `a::b::c` → `a`; for
/// `<Type as Trait>::f` the crate of `Type`, or of `Trait` when `Type` is a generic
/// parameter, primitive, slice or reference to one. `None` for names without a path.
fn leading_crate(name: &str) -> Option<&str> {
    if let Some(rest) = name.strip_prefix('<') {
        let (ty, tr) = split_qualified(rest);
        return path_crate(ty).or_else(|| tr.and_then(path_crate));
    }
    path_crate(name)
}

/// Splits `Type as Trait>::...` into `Type` and `Trait` at the top nesting level.
fn split_qualified(s: &str) -> (&str, Option<&str>) {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            '>' if depth == 0 => return (&s[..i], None),
            '>' => depth -= 1,
            ' ' if depth == 0 && s[i..].starts_with(" as ") => {
                let trait_part = &s[i + 4..];
                return (&s[..i], Some(trait_part));
            }
            _ => {}
        }
    }
    (s, None)
}

/// The first segment of a path if it is followed by `::`.
fn path_crate(s: &str) -> Option<&str> {
    let mut s = s.trim_start();
    for prefix in ["&mut ", "&", "*const ", "*mut ", "dyn ", "impl "] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.trim_start();
        }
    }
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    if end > 0 && s[end..].starts_with("::") {
        Some(&s[..end])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: Option<&str>) -> Frame {
        Frame {
            function: function.into(),
            file: file.map(Into::into),
            line: Some(1),
            column: None,
            address: 0x1000,
        }
    }

    #[test]
    fn crates_of_names() {
        assert_eq!(leading_crate("std::thread::sleep"), Some("std"));
        assert_eq!(
            leading_crate("<std::fs::File as std::io::Read>::read"),
            Some("std")
        );
        assert_eq!(
            leading_crate("<app::Job as core::future::future::Future>::poll"),
            Some("app")
        );
        assert_eq!(
            leading_crate("<F as core::future::into_future::IntoFuture>::into_future"),
            Some("core")
        );
        assert_eq!(
            leading_crate("<&mut [u8] as std::io::Read>::read"),
            Some("std")
        );
        assert_eq!(leading_crate("app::work::{{closure}}"), Some("app"));
        assert_eq!(leading_crate("__GI___clock_nanosleep"), None);
    }

    #[test]
    fn keeps_user_frames_and_the_blocking_call() {
        let frames = vec![
            frame("__GI___clock_nanosleep", None),
            frame("nanosleep", None),
            frame(
                "std::sys::pal::unix::thread::Thread::sleep",
                Some("/rustc/x/library/std/src/sys/pal/unix/thread.rs"),
            ),
            frame(
                "std::thread::sleep",
                Some("/rustc/x/library/std/src/thread/mod.rs"),
            ),
            frame("app::helper", Some("src/main.rs")),
            frame(
                "core::ops::function::FnOnce::call_once",
                Some("/rustc/x/library/core/src/ops/function.rs"),
            ),
            frame("app::main::{{closure}}", Some("src/main.rs")),
            frame("std::sys::backtrace::__rust_begin_short_backtrace", None),
            frame("start_thread", None),
        ];
        let names: Vec<_> = user_frames(&frames)
            .into_iter()
            .map(|f| f.function)
            .collect();
        assert_eq!(
            names,
            [
                "std::thread::sleep",
                "app::helper",
                "app::main::{{closure}}"
            ]
        );
    }

    #[test]
    fn short_names_are_judged_by_source_file() {
        assert!(is_library(&frame(
            "sleep",
            Some("/rustc/abc/library/std/src/thread/mod.rs")
        )));
        assert!(is_library(&frame(
            "poll",
            Some("/root/.cargo/registry/src/x/tokio-1.47.0/src/a.rs")
        )));
        assert!(!is_library(&frame("helper", Some("/work/app/src/main.rs"))));
        assert!(is_library(&frame("helper", Some("x.c"))));
    }

    #[test]
    fn classifies() {
        let a = vec![frame("read", None), frame("app::f", Some("a.rs"))];
        let mut b = a.clone();
        assert_eq!(classify(std::slice::from_ref(&a)), None);
        assert_eq!(classify(&[a.clone(), b.clone()]), Some(Activity::Blocked));
        b[0].address = 0x2000;
        assert_eq!(classify(&[a.clone(), a.clone(), b]), Some(Activity::Busy));
    }
}
