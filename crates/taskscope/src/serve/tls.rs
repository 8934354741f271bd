//! TLS for the gRPC server: a certificate and its private key, PEM files named by
//! `TASKSCOPE_TLS_CERT` and `TASKSCOPE_TLS_KEY` (or [`crate::Builder::tls`]).
//!
//! The files are read and checked when the probe starts, on the thread that starts it, so
//! that a missing or unusable file is reported where the person starting the app sees it;
//! the probe then serves nothing rather than serve in the clear what was meant to be
//! encrypted. TLS needs the crate's `tls` feature (rustls on ring): without it, asking
//! for TLS is reported the same way.

use std::path::Path;

use crate::base::config::TlsFiles;

/// A checked server identity, ready for the gRPC server.
#[cfg(feature = "tls")]
#[derive(Debug, Clone)]
pub(crate) struct ServerTls(tonic::transport::ServerTlsConfig);

/// Without the `tls` feature there is never one.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub(crate) enum ServerTls {}

/// The server's TLS identity; `Ok(None)` when TLS is not asked for, `Err` (what is wrong
/// and what to do) when it is and cannot be had.
pub(crate) fn load(files: &TlsFiles) -> Result<Option<ServerTls>, String> {
    use crate::base::config::env::{TLS_CERT, TLS_KEY};
    let (cert, key) = match (&files.cert, &files.key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => return Err(format!("{TLS_CERT} is set but {TLS_KEY} is not")),
        (None, Some(_)) => return Err(format!("{TLS_KEY} is set but {TLS_CERT} is not")),
    };
    let cert = read_pem(cert, "certificate", "CERTIFICATE")?;
    let key = read_pem(key, "private key", "PRIVATE KEY")?;
    identity(&cert, &key)
}

#[cfg(feature = "tls")]
fn identity(cert: &[u8], key: &[u8]) -> Result<Option<ServerTls>, String> {
    use tonic::transport::{Identity, Server, ServerTlsConfig};
    // A client that starts a handshake and never finishes it is dropped like one that
    // never sends its HTTP/2 preface.
    let config = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .timeout(crate::serve::connections::HANDSHAKE_TIMEOUT);
    // tonic parses the files only when the server takes them: do it now, to report it now.
    Server::builder()
        .tls_config(config.clone())
        .map_err(|e| format!("the TLS certificate and key are unusable: {}", chain(&e)))?;
    Ok(Some(ServerTls(config)))
}

#[cfg(not(feature = "tls"))]
fn identity(_cert: &[u8], _key: &[u8]) -> Result<Option<ServerTls>, String> {
    Err(
        "this build of the probe has no TLS: enable the `tls` feature of the taskscope \
         crate"
            .to_owned(),
    )
}

/// Reads a PEM file that must hold a `-----BEGIN ...{kind}-----` block.
fn read_pem(path: &Path, what: &str, kind: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the TLS {what} {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let has_block = text
        .lines()
        .any(|line| line.starts_with("-----BEGIN ") && line.contains(kind));
    if !has_block {
        return Err(format!(
            "{} holds no PEM {what} (a `-----BEGIN ...{kind}-----` block)",
            path.display()
        ));
    }
    Ok(bytes)
}

#[cfg(feature = "tls")]
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

impl ServerTls {
    /// `server`, serving over TLS.
    pub(crate) fn apply(
        &self,
        server: tonic::transport::Server,
    ) -> Result<tonic::transport::Server, String> {
        #[cfg(feature = "tls")]
        {
            server.tls_config(self.0.clone()).map_err(|e| chain(&e))
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = server;
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(cert: Option<&Path>, key: Option<&Path>) -> TlsFiles {
        TlsFiles {
            cert: cert.map(Path::to_path_buf),
            key: key.map(Path::to_path_buf),
        }
    }

    #[test]
    fn no_files_is_no_tls_and_one_file_alone_says_which_is_missing() {
        assert!(matches!(load(&TlsFiles::default()), Ok(None)));
        let problem = load(&files(Some(Path::new("c.pem")), None)).unwrap_err();
        assert!(problem.contains("TASKSCOPE_TLS_KEY is not"), "{problem}");
    }

    #[test]
    fn a_missing_or_non_pem_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let problem = load(&files(Some(&missing), Some(&missing))).unwrap_err();
        assert!(
            problem.contains("cannot read the TLS certificate"),
            "{problem}"
        );
        assert!(problem.contains("missing.pem"), "{problem}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let problem = load(&files(Some(&junk), Some(&junk))).unwrap_err();
        assert!(
            problem.contains("junk.pem holds no PEM certificate"),
            "{problem}"
        );
    }
}
