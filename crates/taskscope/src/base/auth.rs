//! Who may call the probe: on TCP, only clients presenting the token; on a Unix socket,
//! only the app's user (the socket file is created 0600, see `server.rs`).
//!
//! Without `TASKSCOPE_TOKEN`, a random token is drawn at start from the operating system
//! (`getrandom`) and written, 0600, to the token file (`taskscope_api::token`), where the
//! CLI of the same user finds it; when the draw fails, TCP is not served at all. Loopback
//! is no boundary between users of one host: every local user can connect to
//! `127.0.0.1`, and the probe streams the app's arguments, spawn locations and stacks.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use taskscope_api::token;
use tonic::Status;

use crate::base::config::{Bind, Config, TokenSetting};

/// The token every TCP request must carry, if any (the default: none, for a Unix socket,
/// `TASKSCOPE_TOKEN=off` on loopback, or a server with no token of its own).
#[derive(Clone, Default)]
pub(crate) struct Token(Option<std::sync::Arc<str>>);

/// Why the probe cannot serve on TCP.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    /// Serving without a token, or with one that could be guessed, would hand the app's
    /// internals to every local user.
    #[error(
        "cannot draw a random token from the operating system ({0}), so not serving on \
         TCP; set TASKSCOPE_TOKEN, or serve on a Unix socket (TASKSCOPE_BIND=unix:PATH)"
    )]
    NoRandomness(getrandom::Error),
}

/// Decides the token for `config`'s bind; writes the token file when one is drawn.
pub(crate) fn token_for(config: &Config) -> Result<Token, TokenError> {
    token_drawn_by(config, random_token)
}

/// [`token_for`], with `draw` making the random token.
fn token_drawn_by(
    config: &Config,
    draw: impl FnOnce() -> Result<String, getrandom::Error>,
) -> Result<Token, TokenError> {
    let Bind::Tcp(addr) = config.bind else {
        return Ok(Token(None));
    };
    let token = match &config.token {
        TokenSetting::Off if addr.ip().is_loopback() => return Ok(Token(None)),
        TokenSetting::Fixed(token) => token.clone(),
        TokenSetting::Off | TokenSetting::Generate => {
            if config.token == TokenSetting::Off {
                crate::base::diag::warn(
                    "TASKSCOPE_TOKEN=off is for loopback addresses only; a token is required",
                );
            }
            let token = draw().map_err(TokenError::NoRandomness)?;
            if let Err(e) = write_token_file(&token) {
                crate::base::diag::warn(&format!(
                    "cannot write the probe's token file: {e}; clients must be given \
                     the token some other way, so set TASKSCOPE_TOKEN"
                ));
            }
            token
        }
    };
    Ok(Token(Some(token.into())))
}

impl Token {
    /// Refuses a request without the token.
    pub(crate) fn check(&self, headers: &tonic::codegen::http::HeaderMap) -> Result<(), Status> {
        let Some(expected) = &self.0 else {
            return Ok(());
        };
        let given = headers
            .get(token::HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
            Some(_) => Err(Status::unauthenticated(
                "wrong token for this taskscope probe; give the app's TASKSCOPE_TOKEN \
                 (--token or TASKSCOPE_TOKEN), or run the client as the app's user so it \
                 reads the token file",
            )),
            None => Err(Status::unauthenticated(
                "this taskscope probe requires a token; give the app's TASKSCOPE_TOKEN \
                 (--token or TASKSCOPE_TOKEN), or run the client as the app's user so it \
                 reads the token file",
            )),
        }
    }
}

/// Compares without stopping at the first difference, so timing tells nothing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 256 random bits from the operating system (`getrandom`), in hex. There is no fallback:
/// a token made from anything else (the clock, the pid) could be guessed.
fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn token_directory() -> PathBuf {
    // SAFETY: geteuid cannot fail and touches no memory.
    let uid = unsafe { libc::geteuid() };
    let from_env = |name: &str| std::env::var_os(name).map(PathBuf::from);
    token::directory(from_env("XDG_RUNTIME_DIR"), from_env("TMPDIR"), uid)
}

/// Writes the token file, 0600, in a directory only this user can enter; removes the
/// files of processes that are gone, and this one's at exit.
fn write_token_file(token: &str) -> std::io::Result<()> {
    let directory = token_directory();
    match std::fs::DirBuilder::new().mode(0o700).create(&directory) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    check_private(&directory)?;
    remove_stale(&directory);
    let path = token::file(&directory, std::process::id());
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(token.as_bytes())?;
    let _ = TOKEN_FILE.set(path);
    // SAFETY: `remove_at_exit` is a plain `extern "C" fn()` that does not unwind.
    unsafe {
        libc::atexit(remove_at_exit);
    }
    Ok(())
}

/// A directory another user owns or may write to could hand them the token.
fn check_private(directory: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(directory)?;
    // SAFETY: as above.
    let uid = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a directory private to this user (mode 0700)",
            directory.display()
        )));
    }
    Ok(())
}

fn remove_stale(directory: &Path) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for path in entries.filter_map(|e| Some(e.ok()?.path())) {
        let pid = path
            .file_name()
            .and_then(|n| n.to_str()?.strip_suffix(".token")?.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The token file this process wrote, removed at exit: the exit handler (`atexit`) takes
/// no arguments, so it finds the path here.
static TOKEN_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

extern "C" fn remove_at_exit() {
    if let Some(path) = TOKEN_FILE.get() {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(header: Option<&str>) -> tonic::codegen::http::HeaderMap {
        let mut headers = tonic::codegen::http::HeaderMap::new();
        if let Some(value) = header {
            headers.insert(token::HEADER, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn requests_need_the_exact_token() {
        let token = Token(Some("0123456789abcdef".into()));
        assert!(
            token
                .check(&request_with(Some("Bearer 0123456789abcdef")))
                .is_ok()
        );
        let wrong = token
            .check(&request_with(Some("Bearer 0123456789abcdeX")))
            .unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        assert!(wrong.message().contains("wrong token"), "{wrong:?}");
        let missing = token.check(&request_with(None)).unwrap_err();
        assert!(
            missing.message().contains("requires a token"),
            "{missing:?}"
        );
        assert!(Token(None).check(&request_with(None)).is_ok());
    }

    #[test]
    fn drawn_tokens_are_long_and_differ() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(token::problem(&a).is_none());
    }

    #[test]
    fn a_fixed_token_is_used_and_off_only_on_loopback() {
        let mut config = Config {
            bind: Bind::parse("127.0.0.1:1").unwrap(),
            token: TokenSetting::Fixed("0123456789abcdef".into()),
            ..Config::default()
        };
        let token = |config: &Config| token_for(config).unwrap().0;
        assert_eq!(token(&config).as_deref(), Some("0123456789abcdef"));
        config.token = TokenSetting::Off;
        assert!(token(&config).is_none());
        config.bind = Bind::parse("unix:/tmp/x.sock").unwrap();
        config.token = TokenSetting::Fixed("0123456789abcdef".into());
        assert!(
            token(&config).is_none(),
            "a Unix socket is guarded by its mode"
        );
    }

    #[test]
    fn without_randomness_tcp_is_not_served() {
        let failing = || Err(getrandom::Error::UNSUPPORTED);
        let config = Config {
            bind: Bind::parse("127.0.0.1:1").unwrap(),
            token: TokenSetting::Generate,
            ..Config::default()
        };
        let refused = token_drawn_by(&config, failing).err().expect("refused");
        assert!(refused.to_string().contains("TASKSCOPE_TOKEN"), "{refused}");
        // Where no token is drawn, randomness is not needed.
        let fixed = Config {
            token: TokenSetting::Fixed("0123456789abcdef".into()),
            ..config
        };
        assert!(token_drawn_by(&fixed, failing).is_ok());
    }
}
