//! Who may read the probe: over TCP only clients with the token (drawn at start and left
//! in a file only the app's user can read, or `TASKSCOPE_TOKEN`), over a Unix socket only
//! the app's user, and beyond loopback nobody unless asked for.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use taskscope_api::v1;
use taskscope_api::v1::probe_client::ProbeClient;
use taskscope_e2e::{command, free_port, wait_for};

/// A `Snapshot` call with `token` (or none); the status code it ends with.
fn snapshot_code(port: u16, token: Option<&str>) -> tonic::Code {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let address = format!("http://127.0.0.1:{port}");
        let channel = tonic::transport::Endpoint::from_shared(address)
            .unwrap()
            .connect()
            .await
            .expect("the probe listens");
        let value = token.map(|t| taskscope_api::token::bearer(t).parse().unwrap());
        let mut client =
            ProbeClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
                if let Some(value) = &value {
                    let value: &tonic::metadata::AsciiMetadataValue = value;
                    request
                        .metadata_mut()
                        .insert(taskscope_api::token::HEADER, value.clone());
                }
                Ok(request)
            });
        match client.snapshot(v1::SnapshotRequest { page_token: 0 }).await {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        }
    })
}

#[test]
fn tcp_needs_the_token_the_app_wrote_for_its_user() {
    let runtime_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(runtime_dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let port = free_port();
    let mut child = command("forever")
        .env("TASKSCOPE_BIND", format!("127.0.0.1:{port}"))
        .env_remove("TASKSCOPE_TOKEN")
        .env("XDG_RUNTIME_DIR", runtime_dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let file = runtime_dir
        .path()
        .join("taskscope")
        .join(format!("{}.token", child.id()));
    let token = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&file).ok()
    });
    let serving = wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let codes = (
        snapshot_code(port, None),
        snapshot_code(port, Some("not-the-right-token-at-all")),
        token.as_deref().map(|t| snapshot_code(port, Some(t))),
    );
    let mode = std::fs::metadata(&file).map(|m| m.permissions().mode() & 0o777);
    child.kill().unwrap();
    let _ = child.wait();
    assert!(serving.is_some(), "the probe never listened");
    let token = token.expect("the token file was written");
    assert!(token.len() >= 32, "{token:?}");
    assert_eq!(mode.unwrap(), 0o600, "the token file is private");
    assert_eq!(codes.0, tonic::Code::Unauthenticated, "no token");
    assert_eq!(codes.1, tonic::Code::Unauthenticated, "a wrong token");
    assert_eq!(codes.2, Some(tonic::Code::Ok), "the file's token");
}

#[test]
fn loopback_without_a_token_is_an_explicit_choice() {
    let port = free_port();
    let mut child = command("forever")
        .env("TASKSCOPE_BIND", format!("127.0.0.1:{port}"))
        .env("TASKSCOPE_TOKEN", "off")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let serving = wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let code = snapshot_code(port, None);
    child.kill().unwrap();
    let _ = child.wait();
    assert!(serving.is_some());
    assert_eq!(code, tonic::Code::Ok);
}

#[test]
fn the_unix_socket_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("app.sock");
    let mut app = command("forever");
    app.env("TASKSCOPE_BIND", format!("unix:{}", socket.display()))
        .stdout(Stdio::null());
    // SAFETY: umask is async-signal-safe and only touches the child.
    unsafe {
        app.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let mut child = app.spawn().unwrap();
    let mode = wait_for(Duration::from_secs(10), || {
        let meta = std::fs::metadata(&socket).ok()?;
        std::os::unix::net::UnixStream::connect(&socket).ok()?;
        Some(meta.permissions().mode() & 0o777)
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(mode, Some(0o600), "under umask 000");
}

#[test]
fn an_address_beyond_loopback_needs_an_opt_in() {
    let output = command("healthy")
        .env("TASKSCOPE_BIND", "0.0.0.0:0")
        .env_remove("TASKSCOPE_ALLOW_REMOTE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the app runs on: {stderr}");
    assert!(
        stderr.contains("not a loopback address") && stderr.contains("TASKSCOPE_ALLOW_REMOTE=1"),
        "{stderr}"
    );
}
