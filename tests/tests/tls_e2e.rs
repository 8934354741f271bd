//! TLS end to end: a real example app serving its probe over TLS with a self-signed
//! certificate made here, and the real `taskscope` binary connecting to it with
//! `--tls-ca`, through `events` and `check --attach`; a plain-text client is turned away
//! with a message saying what to do; bad files are named.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use taskscope_e2e::{Running, first_line_of, free_port, wait_until};

/// A certificate for `localhost` and `127.0.0.1`, and its key, as PEM files in `dir`.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    self_signed_for(dir, &["localhost", "127.0.0.1"])
}

/// A self-signed certificate for `names`, and its key, as PEM files in `dir`.
fn self_signed_for(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
    let names = names
        .iter()
        .map(|name| (*name).to_owned())
        .collect::<Vec<_>>();
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// The `forever` example serving its probe over TLS on a free loopback port, until
/// dropped.
struct TlsService {
    _running: Running,
    port: u16,
}

impl TlsService {
    fn start(cert: &Path, key: &Path) -> Self {
        let port = free_port();
        let mut command = taskscope_e2e::command("forever");
        command
            .env("TASKSCOPE_BIND", format!("127.0.0.1:{port}"))
            .env("TASKSCOPE_TLS_CERT", cert)
            .env("TASKSCOPE_TLS_KEY", key)
            .stdout(Stdio::null());
        let running = Running::spawn(&mut command);
        wait_until("the probe listens", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self {
            _running: running,
            port,
        }
    }
}

fn taskscope(args: &[&str]) -> Command {
    let mut command = Command::new(taskscope_e2e::taskscope());
    command
        .args(args)
        .env_remove("TASKSCOPE_TLS_CA")
        .env_remove("TASKSCOPE_STALL_THRESHOLD")
        .stdin(Stdio::null());
    command
}

#[test]
fn events_and_check_attach_connect_over_tls_with_the_certificate_given() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let service = TlsService::start(&cert, &key);
    let address = format!("https://127.0.0.1:{}", service.port);
    let ca = cert.to_str().unwrap();

    let (first, output) = first_line_of(&mut taskscope(&["events", "--tls-ca", ca, &address]));
    let update: Value = serde_json::from_str(&first).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&output.stderr));
    });
    assert_eq!(update["process"]["program"], "forever", "{update:#}");

    // The environment variable does the same; `forever` stalls 150 ms once a second.
    let output = taskscope(&["check", "--format", "json", "--duration", "3s", "--attach"])
        .arg(&address)
        .env("TASKSCOPE_TLS_CA", &cert)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(report["processes"][0]["program"], "forever", "{report:#}");
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["kind"] == "stall"), "{report:#}");
}

#[test]
fn a_plain_text_client_of_a_tls_probe_is_told_to_use_https_and_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let service = TlsService::start(&cert, &key);
    let plain = format!("127.0.0.1:{}", service.port);
    let output = taskscope(&["events", "--connect-timeout", "20s", &plain])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("connect to https://{plain} with --tls-ca")),
        "{stderr}"
    );

    // https:// without a certificate to check against says what to give.
    let secure = format!("https://{plain}");
    let output = taskscope(&["events", &secure]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tls-ca"), "{stderr}");
}

#[test]
fn a_certificate_the_ca_file_does_not_vouch_for_is_refused_and_the_cli_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let service = TlsService::start(&cert, &key);
    let elsewhere = tempfile::tempdir().unwrap();
    let (named_elsewhere, named_elsewhere_key) =
        self_signed_for(elsewhere.path(), &["probe.example.org"]);
    let misnamed = TlsService::start(&named_elsewhere, &named_elsewhere_key);
    // A CA file that did not sign the probe's certificate; the right one, for a
    // certificate that does not name the address connected to.
    for (ca, port) in [
        (&named_elsewhere, service.port),
        (&named_elsewhere, misnamed.port),
    ] {
        let output = taskscope(&["events", "--connect-timeout", "20s", "--tls-ca"])
            .arg(ca)
            .arg(format!("https://127.0.0.1:{port}"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("invalid peer certificate"), "{stderr}");
        assert!(stderr.contains("subject alternative names"), "{stderr}");
    }
}

#[test]
fn an_unusable_ca_file_is_named_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    for (file, says) in [
        (&missing, "cannot read"),
        (&junk, "holds no PEM certificate"),
    ] {
        let output = taskscope(&["events", "--tls-ca"])
            .arg(file)
            .arg("https://127.0.0.1:1")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}

/// A probe whose certificate file is missing says so and serves nothing; the app runs on.
#[test]
fn a_probe_with_a_missing_certificate_warns_serves_nothing_and_the_app_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = self_signed(dir.path());
    let missing = dir.path().join("missing.pem");
    let output = Command::new(taskscope_e2e::example("healthy"))
        .env("TASKSCOPE_BIND", "127.0.0.1:0")
        .env("TASKSCOPE_TLS_CERT", &missing)
        .env("TASKSCOPE_TLS_KEY", &key)
        .env_remove("TASKSCOPE_RECORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "the app runs on: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot read the TLS certificate {}",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("without its gRPC server"), "{stderr}");
}
