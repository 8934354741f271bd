//! Where updates come from: a live probe over gRPC, or recordings on disk.
//!
//! A target names either; [`Target::parse`] decides which, so every command accepts the
//! same spellings: `http://host:port`, `https://host:port` (TLS, with `--tls-ca`),
//! `host:port`, `unix:/path`, a `.tsrec` file, or a directory of them.

pub(crate) mod console;
pub(crate) mod grpc;
pub(crate) mod protocol;
pub(crate) mod recording;
pub(crate) mod tls;
pub(crate) mod token;

use std::path::PathBuf;

use anyhow::bail;

/// A probe's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Address {
    /// `http://host:port`, or `https://host:port` for TLS.
    Tcp(String),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(uri) => f.write_str(uri),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Address {
    /// Parses an address; `None` when `text` does not look like one.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        if let Some(path) = text.strip_prefix("unix:") {
            return Some(Self::Unix(PathBuf::from(path)));
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return Some(Self::Tcp(text.to_owned()));
        }
        let (host, port) = text.rsplit_once(':')?;
        let looks_like_host = !host.is_empty() && !host.contains('/');
        (looks_like_host && port.parse::<u16>().is_ok())
            .then(|| Self::Tcp(format!("http://{text}")))
    }
}

/// What a command reads from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Live(Address),
    /// A recording file or a directory of recordings.
    Recording(PathBuf),
}

impl Target {
    /// An existing path wins over an address (a file may well be called `host:1234`).
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let path = PathBuf::from(text);
        if path.exists() && !text.starts_with("unix:") {
            return Ok(Self::Recording(path));
        }
        match Address::parse(text) {
            Some(address) => Ok(Self::Live(address)),
            None => bail!(
                "`{text}` is neither an existing recording nor a probe address; give a \
                 recording file (`app-1234.tsrec`), a directory of them, or an address such \
                 as `127.0.0.1:6670` or `unix:/tmp/app.sock`"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_recognised_in_every_spelling() {
        let tcp = |s: &str| Some(Address::Tcp(s.to_owned()));
        assert_eq!(
            Address::parse("127.0.0.1:6670"),
            tcp("http://127.0.0.1:6670")
        );
        assert_eq!(Address::parse("localhost:80"), tcp("http://localhost:80"));
        assert_eq!(
            Address::parse("http://[::1]:6670"),
            tcp("http://[::1]:6670")
        );
        assert_eq!(
            Address::parse("unix:/tmp/a.sock"),
            Some(Address::Unix("/tmp/a.sock".into()))
        );
        assert_eq!(Address::parse("recording.tsrec"), None);
        assert_eq!(Address::parse("dir/file:12"), None);
        assert_eq!(Address::parse("host:99999"), None);
    }

    #[test]
    fn an_existing_path_is_a_recording_and_nonsense_says_what_is_expected() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::parse(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(target, Target::Recording(dir.path().to_owned()));
        let err = Target::parse("no/such/file.tsrec").unwrap_err().to_string();
        assert!(err.contains("neither an existing recording"), "{err}");
    }
}
