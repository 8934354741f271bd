//! The harness's other builds: the same workloads compiled with different features, for
//! the modes whose whole point is how tokio itself is built.
//!
//! A mode's cost is only honest against tokio as the app would build it without the probe
//! (the probe turns tokio features on, and those cost something before the probe does
//! anything), and the hooks route's cost only honest as an app that leaves tokio's
//! `tracing` feature off builds it. Cargo features cannot differ between two processes
//! of one binary, so each of those modes runs a build of this harness of its own, kept in
//! a directory beside this binary's target directory (`<target>/<dir>/release/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

use crate::mode::Mode;

/// One other build of the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Build {
    /// Its target directory, under this binary's.
    pub(crate) dir: &'static str,
    /// Cargo's feature flags for it.
    features: &'static [&'static str],
    /// Built without the workspace's `--cfg tokio_unstable` (an empty `RUSTFLAGS`
    /// overrides the workspace's `build.rustflags`).
    without_cfg: bool,
}

/// Tokio as an app without the probe builds it: no `tracing` or `taskdump` feature, no
/// cfg (mode `plain`).
pub(crate) const PLAIN: Build = Build {
    dir: "plain",
    features: &["--no-default-features"],
    without_cfg: true,
};

/// The probe's hooks route alone, tokio without its `tracing` feature: a
/// `#[taskscope::main]` app with `default-features = false` (mode `taskscope-lean`).
pub(crate) const LEAN: Build = Build {
    dir: "lean",
    features: &["--no-default-features", "--features", "probe-hooks"],
    without_cfg: false,
};

impl Build {
    /// The build a mode's children run, when it is not this binary.
    pub(crate) fn of(mode: Mode) -> Option<Build> {
        match mode {
            Mode::Plain => Some(PLAIN),
            Mode::TaskscopeLean => Some(LEAN),
            _ => None,
        }
    }

    /// The command that makes this build, run from the workspace root.
    pub(crate) fn command_text(&self) -> String {
        format!(
            "{}cargo build --release -p taskscope-bench {} --target-dir target/{}",
            if self.without_cfg { "RUSTFLAGS= " } else { "" },
            self.features.join(" "),
            self.dir
        )
    }

    /// Where this build's binary is, beside this binary's target directory.
    pub(crate) fn binary(&self) -> anyhow::Result<PathBuf> {
        let own = std::env::current_exe().context("cannot find own binary")?;
        Ok(target_dir(&own)?
            .join(self.dir)
            .join("release")
            .join(own.file_name().unwrap_or_default()))
    }

    /// This build's binary, which must exist already.
    pub(crate) fn existing_binary(&self, mode: Mode) -> anyhow::Result<PathBuf> {
        let binary = self.binary()?;
        ensure!(
            binary.is_file(),
            "mode `{mode}` runs another build of this harness, and there is none at {}; \
             build it first, from the workspace root: {}",
            binary.display(),
            self.command_text()
        );
        Ok(binary)
    }

    /// Builds (or brings up to date: the source may have changed since) this build with
    /// cargo, from the workspace this harness was compiled in. The guard does this so
    /// that the release check stays one command and never measures a stale probe.
    pub(crate) fn make(&self) -> anyhow::Result<PathBuf> {
        let own = std::env::current_exe().context("cannot find own binary")?;
        let target = target_dir(&own)?.join(self.dir);
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        ensure!(
            manifest.is_file(),
            "cannot build `{}`: this harness's sources are gone from {}; build it by hand: {}",
            self.dir,
            manifest.display(),
            self.command_text()
        );
        eprintln!(
            "[guard] bringing the `{}` build up to date (the first time takes minutes): {}",
            self.dir,
            self.command_text()
        );
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        // From the workspace root, wherever the guard was started: cargo reads the
        // workspace's `.cargo/config.toml` (the cfg the hooks route needs) from the
        // directory it runs in, not from the manifest's.
        if let Some(root) = manifest
            .parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
        {
            command.current_dir(root);
        }
        command
            .args(["build", "--release", "--manifest-path"])
            .arg(&manifest)
            .args(self.features)
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        if self.without_cfg {
            command.env("RUSTFLAGS", "");
        } else {
            command.env_remove("RUSTFLAGS");
        }
        let status = command
            .status()
            .with_context(|| format!("cannot run cargo to build `{}`", self.dir))?;
        if !status.success() {
            bail!(
                "building `{}` failed ({status}); cargo's messages are above",
                self.dir
            );
        }
        self.binary()
    }
}

/// `target/` for `target/release/taskscope-bench`.
fn target_dir(own: &Path) -> anyhow::Result<PathBuf> {
    own.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .context("cannot find the target directory of this binary")
}

/// The binary a mode's children run: this one, or the mode's own build, which must exist.
pub(crate) fn binary_for(mode: Mode) -> anyhow::Result<PathBuf> {
    match Build::of(mode) {
        Some(build) => build.existing_binary(mode),
        None => std::env::current_exe().context("cannot find own binary"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_build_has_no_cfg_and_the_lean_build_keeps_it() {
        let plain = Build::of(Mode::Plain).unwrap().command_text();
        assert_eq!(
            plain,
            "RUSTFLAGS= cargo build --release -p taskscope-bench --no-default-features \
             --target-dir target/plain"
        );
        let lean = Build::of(Mode::TaskscopeLean).unwrap().command_text();
        assert_eq!(
            lean,
            "cargo build --release -p taskscope-bench --no-default-features --features \
             probe-hooks --target-dir target/lean"
        );
        assert_eq!(Build::of(Mode::Taskscope), None);
    }
}
