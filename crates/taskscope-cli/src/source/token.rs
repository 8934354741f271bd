//! The token a probe served over TCP asks for: `--token` (or `TASKSCOPE_TOKEN`) when
//! given, else the token file the probe listening on that loopback port wrote for its user
//! (`taskscope_api::token`). The file is only read when the port's listener is found among
//! this user's processes, so a token never goes to a port some other program took.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use super::Address;

static GIVEN: OnceLock<String> = OnceLock::new();

/// The token from the command line or the environment, for every connection.
pub(crate) fn set_given(token: Option<String>) {
    if let Some(token) = token.filter(|t| !t.trim().is_empty()) {
        let _ = GIVEN.set(token.trim().to_owned());
    }
}

/// The token to present to `address`, if there is one to present.
pub(crate) fn for_address(address: &Address) -> Option<String> {
    if let Some(token) = GIVEN.get() {
        return Some(token.clone());
    }
    let Address::Tcp(uri) = address else {
        return None;
    };
    let port = loopback_port(uri)?;
    let pid = listener_pid(port)?;
    // The probe's own environment and user decide where it wrote the file (root attaching
    // to a user's app has another XDG_RUNTIME_DIR than the app).
    let environment = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let variable = |name: &str| {
        environment
            .split(|b| *b == 0)
            .find_map(|entry| entry.strip_prefix(format!("{name}=").as_bytes()))
            .map(|value| PathBuf::from(std::ffi::OsStr::from_bytes(value)))
    };
    let directory = taskscope_api::token::directory(
        variable("XDG_RUNTIME_DIR"),
        variable("TMPDIR"),
        process_uid(pid)?,
    );
    let token = std::fs::read_to_string(taskscope_api::token::file(&directory, pid)).ok()?;
    Some(token.trim().to_owned())
}

/// The effective user id of `pid` (the one its token directory is named after).
fn process_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The port of a loopback address (`http://127.0.0.1:6670`, `localhost:80`, `[::1]:1`).
fn loopback_port(uri: &str) -> Option<u16> {
    let rest = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"))
        .unwrap_or(uri);
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback.then(|| port.parse().ok()).flatten()
}

/// The process of this user listening on TCP `port`: the socket's inode from
/// `/proc/net/tcp{,6}`, then the process holding it among those whose descriptors we may
/// read (our own).
fn listener_pid(port: u16) -> Option<u32> {
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| listening_inodes(&table, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                    .any(|link| wanted.iter().any(|w| link.as_os_str() == w.as_str()))
            })
        })
}

/// The inodes of sockets listening on `port` in a `/proc/net/tcp` table.
fn listening_inodes(table: &str, port: u16) -> Vec<String> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            let listening = *fields.get(3)? == LISTEN;
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| fields.get(9).map(|inode| (*inode).to_owned()))
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_have_a_port_to_look_up() {
        assert_eq!(loopback_port("http://127.0.0.1:6670"), Some(6670));
        assert_eq!(loopback_port("http://localhost:80"), Some(80));
        assert_eq!(loopback_port("http://[::1]:7000"), Some(7000));
        assert_eq!(loopback_port("http://10.0.0.5:6670"), None);
        assert_eq!(loopback_port("http://example.com:6670"), None);
    }

    #[test]
    fn the_listener_of_a_port_is_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_pid(port), Some(std::process::id()));
        // SAFETY: geteuid cannot fail and touches no memory.
        let uid = unsafe { libc::geteuid() };
        assert_eq!(process_uid(std::process::id()), Some(uid));
        drop(listener);
        assert_eq!(listener_pid(port), None);
    }

    #[test]
    fn listening_rows_are_told_from_connections() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1A0E 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1\n\
           1: 0100007F:1A0E 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1\n";
        assert_eq!(listening_inodes(table, 6670), vec!["4242".to_owned()]);
        assert!(listening_inodes(table, 6671).is_empty());
    }
}
