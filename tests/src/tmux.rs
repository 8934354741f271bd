//! Driving the real `taskscope` binary in a real terminal: a tmux server of our own.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::PATIENCE;

/// A tmux server of our own with one window running a plain shell.
pub struct Tmux {
    server: String,
}

/// The shell's prompt (its trailing space is not captured): seeing it again means the
/// dashboard gave the terminal back.
pub const PROMPT: &str = "READY$";

impl Tmux {
    /// Starts a server with one `width`×`height` window, and waits for the prompt; fails
    /// the test when tmux is not installed ([`crate::tools`]).
    pub fn start(width: u16, height: u16) -> Self {
        crate::tools::require("tmux", "-V", "tmux");
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let server = format!(
            "taskscope-e2e-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let tmux = Self { server };
        let status = tmux
            .command()
            .args(["new-session", "-d", "-s", "main"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["env", &format!("PS1={PROMPT} "), "TERM=xterm-256color"])
            .args(["sh"])
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux could not start a session");
        tmux.wait_for("the shell's prompt", |screen| screen.contains(PROMPT));
        tmux
    }

    /// `tmux` talking to this server.
    pub fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.server]);
        // CI runs without a terminal or a locale: tmux must still take UTF-8 (the
        // dashboard draws `●`, `▲`, `│`) and know what terminal it emulates.
        command
            .env("LANG", "C.UTF-8")
            .env("TERM", "xterm-256color")
            .env_remove("TMUX");
        command
    }

    /// Types a line into the shell.
    pub fn run(&self, line: &str) {
        self.keys(&["-l", line]);
        self.keys(&["Enter"]);
    }

    /// `tmux send-keys` with these arguments (key names, or `-l` and literal text).
    pub fn keys(&self, keys: &[&str]) {
        let status = self
            .command()
            .args(["send-keys", "-t", "main"])
            .args(keys)
            .status()
            .expect("tmux runs");
        assert!(status.success());
    }

    /// What the pane shows now.
    pub fn screen(&self) -> String {
        let output = self
            .command()
            .args(["capture-pane", "-p", "-t", "main"])
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Whether the pane shows the alternate screen (the dashboard's) now.
    pub fn alternate_screen(&self) -> bool {
        let output = self
            .command()
            .args(["display-message", "-p", "-t", "main", "#{alternate_on}"])
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&output.stdout).trim() == "1"
    }

    /// Waits (at most [`PATIENCE`]) until the screen satisfies `test`; returns it.
    pub fn wait_for(&self, what: &str, test: impl Fn(&str) -> bool) -> String {
        self.wait_within(PATIENCE, what, test)
            .unwrap_or_else(|screen| panic!("never saw {what}; the screen was:\n{screen}"))
    }

    /// Waits (at most `limit`) until the screen satisfies `test`; returns it, or what it
    /// showed last.
    pub fn wait_within(
        &self,
        limit: Duration,
        what: &str,
        test: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if test(&screen) {
                return Ok(screen);
            }
            if start.elapsed() > limit {
                return Err(format!("({what}, after {limit:?})\n{screen}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .command()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

/// The count in a tab label such as `2 Stalls (3)`.
pub fn tab_count(screen: &str, tab: &str) -> Option<u64> {
    let label = format!("{tab} (");
    let at = screen.find(&label)? + label.len();
    screen[at..].split(')').next()?.parse().ok()
}
