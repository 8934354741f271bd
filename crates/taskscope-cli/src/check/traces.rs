//! `check --trace-dir`: one timeline per stall finding, from the flight-recorder window
//! its recording keeps, written beside the report and named in it.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::export::each_window;
use crate::model::judge::finding::{Detail, Finding};
use crate::timeline::chrome_json::TraceWriter;

/// Writes the window of each stall finding's worst stall found in `recordings` into
/// `dir` as `<program>-<pid>-stall-<id>.trace.json`, and names the file in the finding.
/// Returns how many were written; a stall without a window (the recorder off, or the
/// window held by an earlier stall's) gets none.
pub(crate) fn write(
    dir: &Path,
    recordings: &[PathBuf],
    findings: &mut [Finding],
) -> anyhow::Result<usize> {
    let mut wanted: HashMap<(u32, u64), Option<PathBuf>> = findings
        .iter()
        .filter_map(|f| match f.detail {
            Detail::Stall { stall_id, .. } => Some(((f.pid, stall_id), None)),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for file in recordings {
        each_window(file, |process, timeline| {
            let Some(slot) = timeline
                .stall_id()
                .and_then(|id| wanted.get_mut(&(process.pid, id)))
            else {
                return Ok(());
            };
            let program = Path::new(&process.program)
                .file_name()
                .map_or_else(|| "app".into(), |n| n.to_string_lossy().into_owned());
            let id = timeline.stall_id().unwrap_or_default();
            let path = dir.join(format!("{program}-{}-stall-{id}.trace.json", process.pid));
            let mut writer = TraceWriter::new(BufWriter::new(File::create(&path)?))?;
            writer.process(process.pid, &process.program)?;
            writer.timeline(timeline)?;
            writer.finish()?;
            *slot = Some(path);
            Ok(())
        })
        .with_context(|| format!("cannot write the stall timelines into {}", dir.display()))?;
    }
    let mut written = 0;
    for finding in findings {
        if let Detail::Stall {
            stall_id, trace, ..
        } = &mut finding.detail
            && let Some(Some(path)) = wanted.get(&(finding.pid, *stall_id))
        {
            *trace = Some(path.clone());
            written += 1;
        }
    }
    Ok(written)
}
