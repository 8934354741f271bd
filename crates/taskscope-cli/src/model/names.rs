//! How a frame's function reads in a report or a view: the `{{closure}}`s of async blocks
//! and module paths dropped where they only add noise, and the call an `.await` waits on.
//! One home for the dashboard and `check`'s reports, so both name a wait the same way.

use super::stall::Frame;

/// Whether `function` (the call inside an `.await`) is polling a `JoinHandle`: the task
/// waits for another task to finish. Which task cannot be read from a backtrace.
pub(crate) fn is_join_handle(function: &str) -> bool {
    function.contains("JoinHandle<") && function.contains("Future>::poll")
}

/// The call an `.await` waits on, as a person would write it: the future's type for a
/// `<Type as Future>::poll`, without generic parameters or `{{closure}}`s
/// (`<tokio::time::sleep::Sleep as core::future::future::Future>::poll` →
/// `tokio::time::sleep::Sleep`, `tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}`
/// → `tokio::sync::mpsc::bounded::Receiver::recv`).
pub(crate) fn short_call(function: &str) -> String {
    let mut name = function;
    while let Some(outer) = name.strip_suffix("::{{closure}}") {
        name = outer;
    }
    if let Some(inner) = name.strip_prefix('<')
        && let Some((ty, _)) = inner.split_once(" as ")
    {
        name = ty;
    }
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// A function's name as a person would write it: without the `{{closure}}`s of the async
/// blocks it expands to, and without its module path (`orders::session::Session::run` →
/// `Session::run`). Names with generics keep their path: cutting them misleads.
pub(crate) fn short_function(function: &str) -> &str {
    let mut name = function;
    while let Some(outer) = name.strip_suffix("::{{closure}}") {
        name = outer;
    }
    if name.contains('<') {
        return name;
    }
    let mut cuts = name.rmatch_indices("::").map(|(i, _)| i);
    match (cuts.next(), cuts.next()) {
        (Some(_), Some(second)) => &name[second + 2..],
        _ => name,
    }
}

/// The crate a function belongs to, by the first segment of its path (for a trait method,
/// of the type it is called on).
fn crate_of(function: &str) -> &str {
    let mut name = function.trim_start_matches('<');
    while let Some(outer) = name.strip_suffix("::{{closure}}") {
        name = outer;
    }
    name.split("::").next().unwrap_or(name)
}

/// The call an `.await` at `frames[at]` waits on: the nearest frame inside it, of those a
/// report shows, from another crate. Frames of the `.await`'s own crate in between are
/// its own machinery (a `select!`'s branches), not what it waits on.
pub(crate) fn awaited_call(frames: &[Frame], at: usize) -> Option<&Frame> {
    let point = frames.get(at)?;
    frames[..at]
        .iter()
        .rev()
        .filter(|frame| frame.user)
        .find(|frame| crate_of(&frame.function) != crate_of(&point.function))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_functions_drop_closures_and_module_paths_but_not_generics() {
        assert_eq!(
            short_function("orders::session::Session::run::{{closure}}::{{closure}}"),
            "Session::run"
        );
        assert_eq!(short_function("main::{{closure}}"), "main");
        assert_eq!(
            short_function(
                "<tokio::runtime::task::join::JoinHandle<T> as core::future::future::Future>::poll"
            ),
            "<tokio::runtime::task::join::JoinHandle<T> as core::future::future::Future>::poll"
        );
    }

    #[test]
    fn awaited_calls_read_as_written() {
        assert_eq!(
            short_call("<tokio::time::sleep::Sleep as core::future::future::Future>::poll"),
            "tokio::time::sleep::Sleep"
        );
        assert_eq!(
            short_call("tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}"),
            "tokio::sync::mpsc::bounded::Receiver::recv"
        );
        assert_eq!(
            short_call(
                "<tokio::runtime::task::join::JoinHandle<T> as core::future::future::Future>::poll"
            ),
            "tokio::runtime::task::join::JoinHandle"
        );
    }

    fn frame(function: &str) -> Frame {
        Frame {
            function: function.into(),
            location: None,
            user: true,
        }
    }

    #[test]
    fn the_awaited_call_is_the_nearest_frame_of_another_crate() {
        let frames = [
            frame("tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}"),
            frame("app::main::{{closure}}::{{closure}}"),
            frame("app::main::{{closure}}"),
        ];
        let call = awaited_call(&frames, 2).unwrap();
        assert!(call.function.starts_with("tokio::"));
        assert!(awaited_call(&frames, 0).is_none());
        assert!(awaited_call(&frames, 9).is_none());
    }

    #[test]
    fn a_join_handle_await_is_recognised() {
        assert!(is_join_handle(
            "<tokio::runtime::task::join::JoinHandle<T> as core::future::future::Future>::poll"
        ));
        assert!(!is_join_handle("tokio::sync::mpsc::Receiver<T>::recv"));
    }
}
