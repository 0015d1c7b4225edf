//! The payloads of `shirakumo.mess` §12 (shirakumo-link): one file each in
//! the data directory's `links/`, named by its unguessable name, and one
//! row each in `links` saying which channel it belongs to.
//!
//! A file starts with a small header (the content type and file name it is
//! served with), then the payload as it was sent. The writer thread writes
//! files before the commit that adds their rows (each written to a
//! temporary name, synced and renamed, the directory synced once), and
//! removes files only after the commit that removed their rows. Whatever a
//! crash leaves in between is tidied at start-up: files without a row go,
//! and so do the payloads of anonymous channels, which a restart ends.

use crate::engine::{Change, LinkRecord};
use crate::protocol::{NameKey, name_key};
use rusqlite::{Connection, Transaction, params};
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Schema 4 -> 5.
pub(super) const MIGRATION: &str = "
    CREATE TABLE links (
        name TEXT PRIMARY KEY,
        channel_key TEXT NOT NULL,
        channel TEXT NOT NULL,
        durable INTEGER NOT NULL,
        size INTEGER NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX links_channel ON links (channel_key);";

/// The directory of the payload files, inside the data directory.
pub const DIR_NAME: &str = "links";

/// What every payload file starts with.
const MAGIC: &[u8; 8] = b"LICHATL1";

/// True for a name the server could have given a payload: 32 lower-case
/// hex digits. Anything else is no payload's name (and no path).
pub fn is_payload_name(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn dir_of(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR_NAME)
}

/// A payload file opened for serving: what it is served as, and the file
/// positioned at the payload's first byte.
#[derive(Debug)]
pub struct Payload {
    /// The content type it was shared with.
    pub content_type: String,
    /// The file name it was shared with, if any.
    pub filename: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// The open file, at the payload's start.
    pub file: File,
}

/// Opens the payload `name` of the data directory `data_dir` for serving;
/// `Ok(None)` when there is none of that name.
pub fn open_payload(data_dir: &Path, name: &str) -> io::Result<Option<Payload>> {
    if !is_payload_name(name) {
        return Ok(None);
    }
    let mut file = match File::open(dir_of(data_dir).join(name)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a payload file",
        ));
    }
    let content_type = read_field(&mut file)?;
    let filename = read_field(&mut file)?;
    let head = (MAGIC.len() + 4 + content_type.len() + filename.len()) as u64;
    Ok(Some(Payload {
        content_type,
        filename: Some(filename).filter(|f| !f.is_empty()),
        size: len.saturating_sub(head),
        file,
    }))
}

fn read_field(file: &mut File) -> io::Result<String> {
    let mut len = [0u8; 2];
    file.read_exact(&mut len)?;
    let mut bytes = vec![0u8; u16::from_be_bytes(len) as usize];
    file.read_exact(&mut bytes)?;
    String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

fn push_field(out: &mut Vec<u8>, text: &str) {
    // Both are short: a content type the server accepts, a file name cut
    // to `MAX_FILENAME` bytes.
    let text = &text.as_bytes()[..text.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(text.len() as u16).to_be_bytes());
    out.extend_from_slice(text);
}

/// Writes a payload's file durably: to a temporary name, synced, then
/// renamed into place (the directory is synced by the caller).
fn write_file(dir: &Path, record: &LinkRecord) -> io::Result<()> {
    let mut head = Vec::with_capacity(64);
    head.extend_from_slice(MAGIC);
    push_field(&mut head, &record.content_type);
    push_field(&mut head, record.filename.as_deref().unwrap_or(""));
    let tmp = dir.join(format!("{}.tmp", record.name));
    let mut file = File::create(&tmp)?;
    file.write_all(&head)?;
    file.write_all(&record.payload)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(&record.name))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A payload waiting for the commit of its row.
struct Waiting {
    record: LinkRecord,
    /// The payload's size (it is let go once written).
    size: u64,
    /// Its file is written (and its payload let go).
    written: bool,
}

/// The writer's payload changes waiting for a commit, in the order that
/// matters: channels cleared first, then single payloads removed, then
/// the new ones. Bounded by what the engine lets wait
/// ([`crate::engine::MAX_UNSAVED_BYTES`] of payloads).
#[derive(Default)]
pub(super) struct Pending {
    new: Vec<Waiting>,
    removed: Vec<String>,
    cleared: HashSet<NameKey>,
    /// Files written for payloads dropped before their commit: removed
    /// once the commit is done.
    orphans: Vec<String>,
}

impl Pending {
    /// Takes a change; false if it is none of this module's.
    pub fn merge(&mut self, change: &mut Option<Change>) -> bool {
        match change.take() {
            Some(Change::Link(record)) => self.new.push(Waiting {
                size: record.payload.len() as u64,
                record: *record,
                written: false,
            }),
            Some(Change::DeleteLink(name)) => {
                let before = self.new.len();
                self.drop_new(|w| w.record.name == name);
                if self.new.len() == before {
                    self.removed.push(name);
                }
            }
            Some(Change::DeleteLinks(channel)) => self.clear_channel(&channel),
            other => {
                if let Some(Change::DeleteChannel(channel)) = &other {
                    self.clear_channel(channel);
                }
                *change = other;
                return false;
            }
        }
        true
    }

    fn clear_channel(&mut self, channel: &str) {
        let key = name_key(channel);
        self.drop_new(|w| name_key(&w.record.channel) == key);
        self.cleared.insert(key);
    }

    fn drop_new(&mut self, mut gone: impl FnMut(&Waiting) -> bool) {
        let orphans = &mut self.orphans;
        self.new.retain(|w| {
            if !gone(w) {
                return true;
            }
            if w.written {
                orphans.push(w.record.name.clone());
            }
            false
        });
    }

    pub fn len(&self) -> usize {
        self.new.len() + self.removed.len() + self.cleared.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.orphans.is_empty()
    }

    /// Before the commit: writes the files of new payloads not written
    /// yet, and syncs their directory.
    pub fn write_files(&mut self, data_dir: &Path) -> io::Result<()> {
        if self.new.iter().all(|w| w.written) {
            return Ok(());
        }
        let dir = dir_of(data_dir);
        std::fs::create_dir_all(&dir)?;
        for w in self.new.iter_mut().filter(|w| !w.written) {
            write_file(&dir, &w.record)?;
            w.written = true;
            w.record.payload = Vec::new();
        }
        sync_dir(&dir)
    }

    /// In the commit: the rows. Returns the names whose files go once it
    /// is committed.
    pub fn apply(&self, tx: &Transaction<'_>) -> rusqlite::Result<Vec<String>> {
        let mut gone = self.orphans.clone();
        for key in &self.cleared {
            let mut stmt = tx.prepare_cached("SELECT name FROM links WHERE channel_key = ?1")?;
            let names = stmt.query_map([&**key], |r| r.get::<_, String>(0))?;
            for name in names {
                gone.push(name?);
            }
            tx.prepare_cached("DELETE FROM links WHERE channel_key = ?1")?
                .execute([&**key])?;
        }
        for name in &self.removed {
            tx.prepare_cached("DELETE FROM links WHERE name = ?1")?
                .execute([name])?;
            gone.push(name.clone());
        }
        for w in &self.new {
            let r = &w.record;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO links (name, channel_key, channel, durable, size, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                r.name,
                &*name_key(&r.channel),
                r.channel,
                r.durable,
                i64::try_from(w.size).unwrap_or(i64::MAX),
                i64::try_from(r.created).unwrap_or(i64::MAX)
            ])?;
        }
        Ok(gone)
    }

    pub fn clear(&mut self) {
        *self = Pending::default();
    }
}

/// After a commit: removes the files of the payloads it removed. A file
/// that cannot be removed is logged; start-up tries again.
pub(super) fn remove_files(data_dir: &Path, names: &[String]) {
    let dir = dir_of(data_dir);
    for name in names {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(
                "cannot remove the shared file {}: {e}",
                dir.join(name).display()
            ),
        }
    }
}

/// Start-up: removes the payloads of anonymous channels (gone with the
/// restart) and every file without a row (a crash between writing it and
/// committing, or between a commit and removing it), then returns per
/// channel what its payloads count against `--max-link-bytes`.
pub(super) fn tidy_and_load(
    conn: &Connection,
    data_dir: &Path,
) -> Result<Vec<(String, u64)>, String> {
    let sql = |e: rusqlite::Error| format!("links: {e}");
    conn.execute("DELETE FROM links WHERE durable = 0", [])
        .map_err(sql)?;
    let mut known = HashSet::new();
    let mut per_channel: Vec<(String, u64)> = Vec::new();
    {
        let mut stmt = conn
            .prepare("SELECT name, channel_key, channel, size FROM links ORDER BY channel_key")
            .map_err(sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(sql)?;
        let mut last_key = None;
        for row in rows {
            let (name, key, channel, size) = row.map_err(sql)?;
            let cost = crate::engine::link_cost(size.max(0) as u64);
            if last_key.as_ref() == Some(&key) {
                if let Some(last) = per_channel.last_mut() {
                    last.1 += cost;
                }
            } else {
                per_channel.push((channel, cost));
                last_key = Some(key);
            }
            known.insert(name);
        }
    }
    let dir = dir_of(data_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(per_channel),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if known.contains(name.as_ref()) {
            continue;
        }
        // Only what this module writes is removed: a payload's name, or
        // one with `.tmp`.
        let ours = is_payload_name(&name) || name.strip_suffix(".tmp").is_some_and(is_payload_name);
        if ours && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        log::info!(
            "removed {removed} shared file(s) without a channel from {}",
            dir.display()
        );
    }
    Ok(per_channel)
}
