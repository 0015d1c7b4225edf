//! `--emotes-dir`: the primary channel's emotes (`shirakumo.mess` §3) read
//! from image files at start-up, one emote per file, named by the file's
//! stem, its content type given by the extension.

use crate::engine::{EmoteRecord, Time, emote_name_problem};
use crate::protocol::payload::base64_encode;
use std::path::Path;

/// The content type of an emote file by its extension (any case).
fn content_type(ext: &str) -> Option<&'static str> {
    Some(match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => return None,
    })
}

/// §3 (`--emotes-dir`): reads every file in `dir` as an emote of `channel` added at `now`, in
/// the order of their names. Hidden files (starting with `.`) and
/// subdirectories are passed over. The error names the file: one that
/// cannot be read, has no known image extension, a name no emote can
/// have, or more than `max_size` bytes.
pub fn read_emote_dir(
    dir: &Path,
    channel: &str,
    max_size: usize,
    now: Time,
) -> Result<Vec<EmoteRecord>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden || path.is_dir() {
            continue;
        }
        paths.push(path);
    }
    paths.sort();
    let mut records = Vec::with_capacity(paths.len());
    for path in paths {
        let shown = path.display();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let Some(ty) = content_type(ext) else {
            return Err(format!(
                "{shown}: unknown emote file type {ext:?} (png, gif, jpg, jpeg or webp)"
            ));
        };
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            return Err(format!("{shown}: the file name is not UTF-8"));
        };
        if let Some(problem) = emote_name_problem(name) {
            return Err(format!("{shown}: the emote name {name:?} {problem}"));
        }
        let len = std::fs::metadata(&path)
            .map_err(|e| format!("cannot read {shown}: {e}"))?
            .len();
        if len > max_size as u64 {
            return Err(format!(
                "{shown}: {len} bytes, more than --max-emote-size {max_size}"
            ));
        }
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        if bytes.len() > max_size {
            return Err(format!(
                "{shown}: {} bytes, more than --max-emote-size {max_size}",
                bytes.len()
            ));
        }
        if bytes.is_empty() {
            return Err(format!("{shown}: the file is empty"));
        }
        records.push(EmoteRecord {
            channel: channel.to_owned(),
            name: name.to_owned(),
            content_type: ty.to_owned(),
            payload: base64_encode(&bytes),
            added: now,
        });
    }
    Ok(records)
}
