//! The access token of a probe served over TCP: where the probe leaves a token it made
//! up, and how a client presents one. Both sides use these, so the file a probe writes is
//! the file the CLI reads.
//!
//! A probe serving TCP without `TASKSCOPE_TOKEN` draws a random token at start and writes
//! it, readable by its own user only, to `$XDG_RUNTIME_DIR/taskscope/<pid>.token` (or
//! `$TMPDIR/taskscope-<uid>/<pid>.token` where `XDG_RUNTIME_DIR` is unset). Anyone who can
//! read that file could read the probe's process anyway.

use std::path::PathBuf;

/// The request header that carries the token, as `Bearer <token>`.
pub const HEADER: &str = "authorization";

/// The header's value for `token`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The directory of token files of a process of user `uid` whose environment has
/// `runtime_dir` (`XDG_RUNTIME_DIR`) and `temp_dir` (`TMPDIR`, else `/tmp`): per user,
/// never shared with another user.
pub fn directory(runtime_dir: Option<PathBuf>, temp_dir: Option<PathBuf>, uid: u32) -> PathBuf {
    match runtime_dir.filter(|dir| dir.is_absolute()) {
        Some(dir) => dir.join("taskscope"),
        None => temp_dir
            .filter(|dir| dir.is_absolute())
            .unwrap_or_else(|| PathBuf::from("/tmp"))
            .join(format!("taskscope-{uid}")),
    }
}

/// The token file of process `pid` in `directory`.
pub fn file(directory: &std::path::Path, pid: u32) -> PathBuf {
    directory.join(format!("{pid}.token"))
}

/// Why a token is unusable, or `None` when it is fine: long enough not to be guessed,
/// and plain visible ASCII (it travels in an HTTP header).
pub fn problem(token: &str) -> Option<&'static str> {
    if token.len() < MIN_LENGTH {
        Some("a token needs at least 16 characters")
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        Some("a token is made of visible ASCII characters only (no spaces)")
    } else {
        None
    }
}

/// The shortest token accepted.
pub const MIN_LENGTH: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_is_per_user_and_ignores_a_relative_runtime_dir() {
        let dir = directory(Some("/run/user/1000".into()), None, 1000);
        assert_eq!(dir, PathBuf::from("/run/user/1000/taskscope"));
        let fallback = directory(Some("relative".into()), None, 1000);
        assert_eq!(fallback, PathBuf::from("/tmp/taskscope-1000"));
        let tmpdir = directory(None, Some("/var/tmp".into()), 7);
        assert_eq!(tmpdir, PathBuf::from("/var/tmp/taskscope-7"));
        assert_eq!(
            file(&dir, 42),
            PathBuf::from("/run/user/1000/taskscope/42.token")
        );
    }

    #[test]
    fn short_or_spaced_tokens_are_refused() {
        assert!(problem("short").is_some());
        assert!(problem("a token with spaces in it").is_some());
        assert!(problem("0123456789abcdef").is_none());
    }
}
