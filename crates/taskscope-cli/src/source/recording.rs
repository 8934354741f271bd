//! Recordings on disk: finding them, and folding one into a model.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use taskscope_api::recording::{EXTENSION, ReadError, Reader};

use crate::model::Model;

/// The recordings `path` names: itself if it is a file, or the `*.tsrec` files in it (in
/// name order, so reports are stable) if it is a directory.
pub(crate) fn files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot open {}: {e}; give a recording file or a directory of them",
            path.display()
        )
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))?
    {
        let entry = entry.with_context(|| format!("cannot list {}", path.display()))?;
        let file = entry.path();
        if file.extension().is_some_and(|ext| ext == EXTENSION) && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// A recording folded into a model, and whether it was cut mid-message.
pub(crate) struct Loaded {
    pub(crate) model: Model,
    /// Byte offset where a cut last message starts.
    pub(crate) truncated_at: Option<u64>,
}

/// Reads a whole recording into a model. A cut end is normal (the model says so); a
/// foreign or damaged file is an error.
pub(crate) fn load(path: &Path) -> anyhow::Result<Loaded> {
    let mut model = Model::new();
    let mut truncated_at = None;
    for item in Reader::open(path)? {
        match item {
            Ok(update) => model.apply(&update),
            Err(ReadError::Truncated { offset, .. }) => truncated_at = Some(offset),
            Err(error) => bail!(error),
        }
    }
    model.finish();
    Ok(Loaded {
        model,
        truncated_at,
    })
}
