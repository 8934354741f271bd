//! TLS towards a probe that serves it (`TASKSCOPE_TLS_CERT`/`KEY` on the app's side): an
//! `https://` address, checked against the certificate authority `--tls-ca` (or
//! `TASKSCOPE_TLS_CA`) names. No system roots: a probe's certificate is the app's own,
//! usually self-signed, and trusting whatever a public CA signed would prove nothing.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, bail};
use tonic::transport::{Certificate, ClientTlsConfig};

/// The certificate authority given for this run, read once at start.
static CA: OnceLock<Certificate> = OnceLock::new();

/// Reads the PEM file `--tls-ca` names; an unreadable or non-PEM file is an error naming it.
pub(crate) fn set_ca(path: Option<&Path>) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read the TLS CA file {} (--tls-ca)", path.display()))?;
    let text = String::from_utf8_lossy(&pem);
    if !text
        .lines()
        .any(|l| l.starts_with("-----BEGIN CERTIFICATE-----"))
    {
        bail!(
            "the TLS CA file {} (--tls-ca) holds no PEM certificate (a `-----BEGIN \
             CERTIFICATE-----` block)",
            path.display()
        );
    }
    let _ = CA.set(Certificate::from_pem(pem));
    Ok(())
}

/// What an `https://` address is checked with; an error saying what to give without one.
pub(crate) fn client_config(uri: &str) -> anyhow::Result<ClientTlsConfig> {
    let Some(ca) = CA.get() else {
        bail!(
            "{uri} is served over TLS: give the probe's certificate (or the CA that signed \
             it) with --tls-ca FILE.pem or TASKSCOPE_TLS_CA"
        );
    };
    Ok(ClientTlsConfig::new().ca_certificate(ca.clone()))
}

/// What to do when a connection error (its whole chain, as text) is rustls refusing the
/// probe's certificate: then the certificate or `--tls-ca` is wrong, not the address.
pub(crate) fn certificate_advice(chain: &str, bind: &str) -> Option<String> {
    chain.contains("invalid peer certificate").then(|| {
        format!(
            "the probe's certificate did not pass the check against --tls-ca: that file must \
             hold the probe's own certificate or the CA that signed it, and the certificate \
             must name {bind} among its subject alternative names and not be a CA certificate \
             itself (docs/security.md#tls)"
        )
    })
}

/// Whether `uri` asks for TLS.
pub(crate) fn is_https(uri: &str) -> bool {
    uri.starts_with("https://")
}

/// What to add when a plain-text connection to `address` broke before any answer: a probe
/// serving TLS drops a client that does not speak it, without a word it could read.
pub(crate) fn plain_text_hint(address: &super::Address, status: &tonic::Status) -> String {
    let super::Address::Tcp(uri) = address else {
        return String::new();
    };
    let broke = matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
    );
    match uri.strip_prefix("http://") {
        Some(rest) if broke => format!(
            "; if the app serves TLS (TASKSCOPE_TLS_CERT), connect to https://{rest} with \
             --tls-ca FILE.pem"
        ),
        _ => String::new(),
    }
}
