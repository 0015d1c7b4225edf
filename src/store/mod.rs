//! Durable state in `lichat.db` (SQLite, WAL, `synchronous=FULL`):
//! registered profiles, regular channels, and server-wide lists.
//!
//! A commit with a full fsync takes several milliseconds on ordinary disks,
//! far more than the event loop may stall, so commits run on a writer
//! thread owned by this module. The loop hands over each turn's changes as
//! one batch with a ticket number; the writer merges every batch waiting
//! for it, keeping only the latest record of each profile and channel, and
//! commits them in one transaction (group commit), publishes the highest
//! committed ticket and wakes the loop, which then releases the replies
//! that waited for those tickets. The database is written through and
//! read only at start-up.
//!
//! A commit that fails (a full disk, above all) is retried with a growing
//! pause, and the writer publishes since when commits fail and why, so
//! that the loop can report the changes it confirms as failed after a
//! while. Batches that arrive meanwhile are merged into the records
//! waiting, which bounds the writer's memory by the number of profiles and
//! channels; everything is committed once the disk takes it again.

use crate::engine::{Change, ChannelRecord, EmoteRecord, ExtData, Password, Profile, Snapshot};
use crate::protocol::NameKey;
use crate::protocol::{Rule, name_key};
use crate::wire::{self, Known, Value};
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod emote_dir;
pub mod history;
pub mod links;
pub use emote_dir::read_emote_dir;

/// The database file's name inside the data directory.
pub const FILE_NAME: &str = "lichat.db";

/// The file a process holding the database open keeps locked.
pub const LOCK_NAME: &str = "lichat.lock";

/// The message of a [`StoreError`] when another process holds the data
/// directory open.
pub const IN_USE: &str = "is in use by another process (a running server?)";

/// Locks `dir`'s [`LOCK_NAME`] for this process, without waiting.
fn lock_dir(dir: &Path) -> Result<std::fs::File, StoreError> {
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK_NAME);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| err(&path, e))?;
    // SAFETY: flock on a descriptor this function owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => err(&dir.join(FILE_NAME), IN_USE),
            _ => err(&path, e),
        });
    }
    Ok(file)
}

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Orders batches of changes: a reply held for ticket `t` may be sent once
/// [`Store::committed`] is at least `t`.
pub type Ticket = u64;

/// Why the store could not start.
#[derive(Debug)]
pub struct StoreError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database {}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for StoreError {}

pub use crate::wake::{NoNotify, Notify};

enum Message {
    Batch(Ticket, Vec<Change>),
    /// `shirakumo.mess` §18: stored messages older than this many days
    /// are deleted (0 keeps them for ever).
    Retention(u64),
    Stop,
}

/// Test hook: the environment variable naming a control file that the
/// writer reads before each commit. The file saying `full` makes commits
/// fail as SQLite does on a full disk (and caps the database at its size
/// at start-up, so that SQLite itself reports the full disk), `hold` makes
/// commits wait until it says something else. Without the variable
/// nothing is read.
pub const FAULTS_ENV: &str = "LICHAT_TEST_STORE_FAULTS";

/// The durable store: a writer thread and the tickets it has committed.
pub struct Store {
    path: PathBuf,
    /// `lichat.lock`, locked while the store is open: one process at a
    /// time writes the database.
    _lock: std::fs::File,
    sender: Sender<Message>,
    shared: Arc<Shared>,
    next: Ticket,
    writer: Option<JoinHandle<()>>,
    /// Disconnected once the writer returns.
    done: Receiver<()>,
}

fn err(path: &Path, e: impl fmt::Display) -> StoreError {
    StoreError {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Opens (creating if needed) `lichat.db` in `dir`, checks its integrity,
/// migrates its schema and loads everything in one pass. The test hook of
/// [`FAULTS_ENV`] applies if the variable is set.
pub fn open(dir: &Path, notify: Arc<dyn Notify>) -> Result<(Store, Snapshot), StoreError> {
    let faults = std::env::var_os(FAULTS_ENV).map(PathBuf::from);
    open_with_faults(dir, notify, faults.as_deref())
}

/// [`open`] with the test hook's control file given (see [`FAULTS_ENV`]),
/// or none.
pub fn open_with_faults(
    dir: &Path,
    notify: Arc<dyn Notify>,
    faults: Option<&Path>,
) -> Result<(Store, Snapshot), StoreError> {
    let lock = lock_dir(dir)?;
    let path = dir.join(FILE_NAME);
    let conn = Connection::open(&path).map_err(|e| err(&path, e))?;
    let full = faults.is_some_and(|f| read_fault(f) == Fault::Full);
    if full {
        cap_size(&conn, None).map_err(|e| err(&path, describe(&conn, &e).text))?;
    }
    prepare(&conn).map_err(|e| err(&path, e))?;
    let mut snapshot = load(&conn).map_err(|e| err(&path, e))?;
    snapshot.links = links::tidy_and_load(&conn, dir).map_err(|e| err(&path, e))?;
    if full {
        cap_size(&conn, Some(u32::MAX as i64 - 1)).map_err(|e| err(&path, e))?;
    }
    let shared = Arc::new(Shared {
        committed: AtomicU64::new(0),
        failing_since: AtomicU64::new(0),
        attempt_since: AtomicU64::new(0),
        waiting: AtomicUsize::new(0),
        cause: Mutex::new(String::new()),
        epoch: Instant::now(),
    });
    let (sender, receiver) = channel();
    let (done_sender, done) = channel::<()>();
    let writer = {
        let shared = shared.clone();
        let path = path.clone();
        let faults = faults.map(Path::to_owned);
        std::thread::Builder::new()
            .name("lichat-store".into())
            .spawn(move || {
                let _done = done_sender;
                writer(conn, path, receiver, shared, notify, faults)
            })
            .map_err(|e| err(&dir.join(FILE_NAME), e))?
    };
    Ok((
        Store {
            path,
            _lock: lock,
            sender,
            shared,
            next: 1,
            writer: Some(writer),
            done,
        },
        snapshot,
    ))
}

/// Test hook: limits the database to its current number of pages (or to
/// `pages`), so that SQLite reports a full disk when it needs another.
fn cap_size(conn: &Connection, pages: Option<i64>) -> rusqlite::Result<()> {
    let pages = match pages {
        Some(p) => p,
        None => conn
            .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))?
            .max(1),
    };
    conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
}

/// How a full disk is named in messages and failures.
pub const DISK_FULL: &str = "the disk is full";

/// An SQLite error in words for people.
struct Described {
    text: String,
    /// The disk (or the user's quota) is full.
    full: bool,
}

fn describe(conn: &Connection, e: &rusqlite::Error) -> Described {
    // SAFETY: the handle is this open connection's own; sqlite3_system_errno
    // only reads the OS error number SQLite recorded on it.
    let errno = unsafe { rusqlite::ffi::sqlite3_system_errno(conn.handle()) };
    describe_error(e, errno)
}

/// Names a full disk as such: SQLite says SQLITE_FULL when a write of the
/// database or its journal finds no space, but a full disk met while
/// growing the WAL index shows as a plain I/O error whose OS error is
/// ENOSPC (or EDQUOT). `errno` is the OS error SQLite recorded for the
/// connection, 0 if none; it is only trusted when SQLite failed at I/O.
fn describe_error(e: &rusqlite::Error, errno: i32) -> Described {
    use rusqlite::ErrorCode as C;
    let code = e.sqlite_error_code();
    let os = match code {
        Some(C::SystemIoFailure | C::DiskFull | C::CannotOpen) if errno != 0 => {
            Some(io::Error::from_raw_os_error(errno))
        }
        _ => None,
    };
    // "No space left on device (os error 28)" without the number.
    let os_text = |o: &io::Error| {
        let text = o.to_string();
        text.split(" (os error")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let os_full = os.as_ref().is_some_and(|o| {
        matches!(
            o.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
    });
    if os_full {
        let text = os.as_ref().map(os_text).unwrap_or_default();
        return Described {
            text: format!("{DISK_FULL} ({text})"),
            full: true,
        };
    }
    if code == Some(C::DiskFull) {
        return Described {
            text: DISK_FULL.to_owned(),
            full: true,
        };
    }
    let text = match &os {
        Some(o) => format!("{e} ({})", os_text(o)),
        None => e.to_string(),
    };
    Described { text, full: false }
}

/// The message of a failed start-up step: a full disk is said as such,
/// whatever the step; anything else says which step failed.
fn step_failed(conn: &Connection, step: &str, e: rusqlite::Error) -> String {
    let d = describe(conn, &e);
    if d.full || step.is_empty() {
        d.text
    } else {
        format!("{step}: {}", d.text)
    }
}

fn prepare(conn: &Connection) -> Result<(), String> {
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| step_failed(conn, "", e))?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| step_failed(conn, "cannot be read", e))?;
    if check != "ok" {
        return Err(format!("fails its integrity check: {check}"));
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| step_failed(conn, "", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("cannot switch to WAL mode (got {mode})"));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| step_failed(conn, "", e))?;
    migrate(conn)
}

/// Forward migrations, one per schema version.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "CREATE TABLE profiles (
        key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        salt BLOB NOT NULL,
        iterations INTEGER NOT NULL,
        hash BLOB NOT NULL,
        registered_on INTEGER NOT NULL,
        last_used INTEGER NOT NULL,
        data TEXT NOT NULL DEFAULT '()'
    );
    CREATE TABLE channels (
        key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        registrant TEXT NOT NULL,
        rules TEXT NOT NULL,
        lifetime INTEGER NOT NULL,
        last_used INTEGER NOT NULL,
        data TEXT NOT NULL DEFAULT '()'
    );
    CREATE TABLE lists (
        list TEXT NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY (list, item)
    );",
    // 1 -> 2: emotes (shirakumo §3), one row each, apart from the
    // channel rows so that a channel change does not rewrite them.
    "CREATE TABLE emotes (
        channel TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        content_type TEXT NOT NULL,
        payload TEXT NOT NULL,
        added INTEGER NOT NULL,
        PRIMARY KEY (channel, key)
    );",
    // 2 -> 3: the history of shirakumo §18 and the memberships of §1.
    history::MIGRATION,
    // 3 -> 4: the trigram index without positions, kept by the writer.
    history::MIGRATION_4,
    // 4 -> 5: the shared payloads of shirakumo §12.
    links::MIGRATION,
];

fn migrate(conn: &Connection) -> Result<(), String> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| step_failed(conn, "", e))?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "schema version {version} is newer than this server's {SCHEMA_VERSION}"
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let step = || -> rusqlite::Result<()> {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()
        };
        step().map_err(|e| {
            step_failed(
                conn,
                &format!("migration to schema version {} failed", i + 1),
                e,
            )
        })?;
    }
    Ok(())
}

fn time(v: i64) -> u64 {
    v.max(0) as u64
}

fn load(conn: &Connection) -> Result<Snapshot, String> {
    let mut snapshot = Snapshot::default();
    let mut stmt = conn
        .prepare(
            "SELECT name, salt, iterations, hash, registered_on, last_used, data FROM profiles",
        )
        .map_err(|e| step_failed(conn, "", e))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .map_err(|e| step_failed(conn, "", e))?;
    for row in rows {
        let (name, salt, iterations, hash, registered_on, last_used, data) =
            row.map_err(|e| step_failed(conn, "", e))?;
        let data = data_from_text(&data)
            .ok_or_else(|| format!("the profile {name:?} has damaged extension data"))?;
        let (Ok(salt), Ok(hash), Ok(iterations)) = (
            <[u8; 16]>::try_from(salt.as_slice()),
            <[u8; 32]>::try_from(hash.as_slice()),
            u32::try_from(iterations),
        ) else {
            return Err(format!("the profile {name:?} has a damaged password hash"));
        };
        snapshot.profiles.push(Profile {
            name,
            password: Password {
                salt,
                iterations,
                hash,
            },
            registered_on: time(registered_on),
            last_used: time(last_used),
            data,
        });
    }
    let mut stmt = conn
        .prepare("SELECT name, registrant, rules, lifetime, last_used, data FROM channels")
        .map_err(|e| step_failed(conn, "", e))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .map_err(|e| step_failed(conn, "", e))?;
    for row in rows {
        let (name, registrant, rules, lifetime, last_used, data) =
            row.map_err(|e| step_failed(conn, "", e))?;
        let data = data_from_text(&data)
            .ok_or_else(|| format!("the channel {name:?} has damaged extension data"))?;
        let rules = rules_from_text(&rules)
            .ok_or_else(|| format!("the channel {name:?} has damaged permission rules"))?;
        snapshot.channels.push(ChannelRecord {
            name,
            registrant,
            rules,
            lifetime: time(lifetime),
            last_used: time(last_used),
            data,
        });
    }
    let mut stmt = conn
        .prepare(
            "SELECT channel, name, content_type, payload, added FROM emotes ORDER BY channel, key",
        )
        .map_err(|e| step_failed(conn, "", e))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(EmoteRecord {
                channel: r.get(0)?,
                name: r.get(1)?,
                content_type: r.get(2)?,
                payload: r.get(3)?,
                added: time(r.get(4)?),
            })
        })
        .map_err(|e| step_failed(conn, "", e))?;
    for row in rows {
        snapshot
            .emotes
            .push(row.map_err(|e| step_failed(conn, "", e))?);
    }
    let mut stmt = conn
        .prepare("SELECT list, item FROM lists ORDER BY rowid")
        .map_err(|e| step_failed(conn, "", e))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(|e| step_failed(conn, "", e))?;
    for row in rows {
        snapshot
            .lists
            .push(row.map_err(|e| step_failed(conn, "", e))?);
    }
    history::load(conn, &mut snapshot).map_err(|e| step_failed(conn, "", e))?;
    Ok(snapshot)
}

/// Rules as wire text: `((join t) (kick (+ "ann")))`.
fn rules_to_text(rules: &[(Known, Rule)]) -> String {
    let value = Value::List(
        rules
            .iter()
            .map(|(k, r)| Value::List(vec![Value::sym(*k), r.to_value()]))
            .collect(),
    );
    let mut out = Vec::new();
    // Rules hold known symbols and strings only: they always print.
    let _ = wire::print_value(&value, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Extension data as wire text: `(("shirakumo-quiet" ...) ...)`.
fn data_to_text(data: &ExtData) -> String {
    let mut out = Vec::new();
    if wire::print_value(&data.to_value(), &mut out).is_err() {
        // Extensions keep printable values; one that is not is dropped
        // rather than stored damaged.
        log::error!("extension data that cannot be printed is not stored");
        return "()".into();
    }
    String::from_utf8(out).unwrap_or_else(|_| "()".into())
}

fn data_from_text(text: &str) -> Option<ExtData> {
    ExtData::from_value(&wire::read_value(text.as_bytes()).ok()?)
}

fn rules_from_text(text: &str) -> Option<Vec<(Known, Rule)>> {
    let value = wire::read_value(text.as_bytes()).ok()?;
    value
        .as_list()?
        .iter()
        .map(|item| {
            let pair = item.as_list()?;
            let class = pair.first()?.as_symbol()?.known()?;
            // Stored rules are kept whole, whatever the current limit.
            let rule = Rule::from_value(pair.get(1)?, usize::MAX).ok()?;
            Some((class, rule))
        })
        .collect()
}

fn clamp(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// Writes one record. `data_unchanged`: the row's `data` column already
/// holds the record's extension data, which is then not written again
/// (an icon of a megabyte is not rewritten at each login).
fn apply(
    tx: &rusqlite::Transaction<'_>,
    change: &Change,
    data_unchanged: bool,
) -> rusqlite::Result<()> {
    match change {
        Change::Profile(p) if data_unchanged => {
            tx.prepare_cached(
                "UPDATE profiles SET name = ?2, salt = ?3, iterations = ?4, hash = ?5,
                   registered_on = ?6, last_used = ?7 WHERE key = ?1",
            )?
            .execute(params![
                &*name_key(&p.name),
                p.name,
                &p.password.salt[..],
                p.password.iterations,
                &p.password.hash[..],
                clamp(p.registered_on),
                clamp(p.last_used),
            ])?;
        }
        Change::Channel(c) if data_unchanged => {
            tx.prepare_cached(
                "UPDATE channels SET name = ?2, registrant = ?3, rules = ?4, lifetime = ?5,
                   last_used = ?6 WHERE key = ?1",
            )?
            .execute(params![
                &*name_key(&c.name),
                c.name,
                c.registrant,
                rules_to_text(&c.rules),
                clamp(c.lifetime),
                clamp(c.last_used),
            ])?;
        }
        Change::Profile(p) => {
            tx.prepare_cached(
                "INSERT INTO profiles (key, name, salt, iterations, hash, registered_on, last_used, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(key) DO UPDATE SET name = ?2, salt = ?3, iterations = ?4,
                   hash = ?5, registered_on = ?6, last_used = ?7, data = ?8",
            )?
            .execute(params![
                &*name_key(&p.name),
                p.name,
                &p.password.salt[..],
                p.password.iterations,
                &p.password.hash[..],
                clamp(p.registered_on),
                clamp(p.last_used),
                data_to_text(&p.data),
            ])?;
        }
        Change::DeleteProfile(name) => {
            tx.prepare_cached("DELETE FROM profiles WHERE key = ?1")?
                .execute(params![&*name_key(name)])?;
            history::delete_profile(tx, &name_key(name))?;
        }
        Change::Channel(c) => {
            tx.prepare_cached(
                "INSERT INTO channels (key, name, registrant, rules, lifetime, last_used, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(key) DO UPDATE SET name = ?2, registrant = ?3, rules = ?4,
                   lifetime = ?5, last_used = ?6, data = ?7",
            )?
            .execute(params![
                &*name_key(&c.name),
                c.name,
                c.registrant,
                rules_to_text(&c.rules),
                clamp(c.lifetime),
                clamp(c.last_used),
                data_to_text(&c.data),
            ])?;
        }
        Change::DeleteChannel(name) => {
            tx.prepare_cached("DELETE FROM channels WHERE key = ?1")?
                .execute(params![&*name_key(name)])?;
            clear_emotes(tx, &name_key(name))?;
            history::delete_channel(tx, &name_key(name))?;
        }
        Change::History(_)
        | Change::Redact { .. }
        | Change::Member(_)
        | Change::DeleteMember { .. } => history::apply(tx, change)?,
        // Written by `links::Pending`, never through here.
        Change::Link(_) | Change::DeleteLink(_) | Change::DeleteLinks(_) => {}
        Change::Emote(e) => {
            tx.prepare_cached(
                "INSERT INTO emotes (channel, key, name, content_type, payload, added)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(channel, key) DO UPDATE SET name = ?3, content_type = ?4,
                   payload = ?5, added = ?6",
            )?
            .execute(params![
                &*name_key(&e.channel),
                &*name_key(&e.name),
                e.name,
                e.content_type,
                e.payload,
                clamp(e.added),
            ])?;
        }
        Change::DeleteEmote { channel, name } => {
            tx.prepare_cached("DELETE FROM emotes WHERE channel = ?1 AND key = ?2")?
                .execute(params![&*name_key(channel), &*name_key(name)])?;
        }
        Change::List {
            list,
            item,
            present: true,
        } => {
            tx.prepare_cached("INSERT OR IGNORE INTO lists (list, item) VALUES (?1, ?2)")?
                .execute(params![list, item])?;
        }
        Change::List {
            list,
            item,
            present: false,
        } => {
            tx.prepare_cached("DELETE FROM lists WHERE list = ?1 AND item = ?2")?
                .execute(params![list, item])?;
        }
    }
    Ok(())
}

/// Deletes every emote of a channel (it expired or was removed).
fn clear_emotes(tx: &rusqlite::Transaction<'_>, channel: &NameKey) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM emotes WHERE channel = ?1")?
        .execute(params![&**channel])?;
    Ok(())
}

/// Per row, the extension data its `data` column holds as last committed
/// (rows with some only), shared with the engine's copy: a record whose
/// data is the very same (`ExtData::same_as`) leaves the column alone.
#[derive(Default)]
struct Written {
    profiles: HashMap<NameKey, ExtData>,
    channels: HashMap<NameKey, ExtData>,
}

impl Written {
    /// Whether the row of `change` already holds its data.
    fn holds(&self, change: &Change) -> bool {
        match change {
            Change::Profile(p) => self
                .profiles
                .get(&name_key(&p.name))
                .is_some_and(|d| d.same_as(&p.data)),
            Change::Channel(c) => self
                .channels
                .get(&name_key(&c.name))
                .is_some_and(|d| d.same_as(&c.data)),
            _ => false,
        }
    }

    /// What `waiting` wrote is committed.
    fn committed(&mut self, waiting: &Waiting) {
        for change in waiting.profiles.values().chain(waiting.channels.values()) {
            let (map, key, data) = match change {
                Change::Profile(p) => (&mut self.profiles, name_key(&p.name), Some(&p.data)),
                Change::Channel(c) => (&mut self.channels, name_key(&c.name), Some(&c.data)),
                Change::DeleteProfile(n) => (&mut self.profiles, name_key(n), None),
                Change::DeleteChannel(n) => (&mut self.channels, name_key(n), None),
                _ => continue,
            };
            match data {
                Some(d) if !d.is_empty() => {
                    map.insert(key, d.clone());
                }
                _ => {
                    map.remove(&key);
                }
            }
        }
    }
}

/// The records waiting for a commit, coalesced by key: the latest record
/// of each profile and of each channel, a deletion being a record too.
/// While commits fail, this is bounded by the number of names the server
/// knows, not by the number of changes made meanwhile.
#[derive(Default)]
struct Waiting {
    profiles: HashMap<NameKey, Change>,
    channels: HashMap<NameKey, Change>,
    /// Channels whose emotes are all to be deleted, before `emotes`.
    cleared: std::collections::HashSet<NameKey>,
    /// Per channel, the latest record of each emote.
    emotes: HashMap<NameKey, HashMap<NameKey, Change>>,
    /// The latest change of each (list, item).
    lists: HashMap<(String, String), Change>,
    /// `shirakumo.mess` §1 the latest membership record of each (profile,
    /// channel).
    members: HashMap<(NameKey, NameKey), Change>,
    /// `shirakumo.mess` §18 messages to store and texts to remove, in
    /// order, bounded (see [`history::Queue`]).
    history: history::Queue,
    /// `shirakumo.mess` §12 payloads to write and remove.
    links: links::Pending,
    /// The highest ticket merged.
    ticket: Ticket,
}

impl Waiting {
    fn merge(&mut self, ticket: Ticket, changes: Vec<Change>) {
        self.ticket = self.ticket.max(ticket);
        for change in changes {
            let mut change = Some(change);
            if self.links.merge(&mut change) {
                continue;
            }
            let Some(change) = change else { continue };
            if let Change::List { list, item, .. } = &change {
                self.lists.insert((list.clone(), item.clone()), change);
                continue;
            }
            match &change {
                Change::History(_) | Change::Redact { .. } => {
                    self.history.push(change);
                    continue;
                }
                Change::Member(m) => {
                    let key = (name_key(&m.profile), name_key(&m.channel));
                    self.members.insert(key, change);
                    continue;
                }
                Change::DeleteMember { profile, channel } => {
                    let key = (name_key(profile), name_key(channel));
                    self.members.insert(key, change);
                    continue;
                }
                Change::DeleteProfile(name) => {
                    // Its memberships go in the same commit; later ones
                    // are a new profile's.
                    let key = name_key(name);
                    self.members.retain(|(p, _), _| *p != key);
                }
                Change::DeleteChannel(name) => {
                    let key = name_key(name);
                    self.members.retain(|(_, c), _| *c != key);
                    self.history.forget_channel(&key);
                }
                _ => {}
            }
            let (map, key) = match &change {
                Change::Profile(p) => (&mut self.profiles, name_key(&p.name)),
                Change::DeleteProfile(name) => (&mut self.profiles, name_key(name)),
                Change::Channel(c) => (&mut self.channels, name_key(&c.name)),
                Change::DeleteChannel(name) => {
                    let key = name_key(name);
                    self.emotes.remove(&key);
                    self.cleared.insert(key.clone());
                    (&mut self.channels, key)
                }
                Change::Emote(e) => (
                    self.emotes.entry(name_key(&e.channel)).or_default(),
                    name_key(&e.name),
                ),
                Change::DeleteEmote { channel, name } => (
                    self.emotes.entry(name_key(channel)).or_default(),
                    name_key(name),
                ),
                _ => continue,
            };
            map.insert(key, change);
        }
    }

    fn len(&self) -> usize {
        self.profiles.len()
            + self.channels.len()
            + self.emotes.values().map(HashMap::len).sum::<usize>()
            + self.lists.len()
            + self.members.len()
            + self.history.len()
            + self.links.len()
    }

    fn clear(&mut self) {
        for map in [&mut self.profiles, &mut self.channels] {
            if map.capacity() > 1024 {
                *map = HashMap::new();
            } else {
                map.clear();
            }
        }
        self.emotes = HashMap::new();
        self.cleared = Default::default();
        self.lists = HashMap::new();
        self.members = HashMap::new();
        self.history.clear();
        self.links.clear();
    }

    /// For the log: what is waiting, a few names of each kind.
    fn summary(&self) -> String {
        fn names(map: &HashMap<NameKey, Change>) -> String {
            let mut names: Vec<&str> = map
                .values()
                .map(|c| match c {
                    Change::Profile(p) => p.name.as_str(),
                    Change::Channel(c) => c.name.as_str(),
                    Change::DeleteProfile(n) | Change::DeleteChannel(n) => n.as_str(),
                    Change::Emote(e) => e.name.as_str(),
                    Change::DeleteEmote { name, .. } => name.as_str(),
                    Change::List { item, .. } => item.as_str(),
                    Change::History(_)
                    | Change::Redact { .. }
                    | Change::Link(_)
                    | Change::DeleteLink(_)
                    | Change::DeleteLinks(_) => "",
                    Change::Member(m) => m.profile.as_str(),
                    Change::DeleteMember { profile, .. } => profile.as_str(),
                })
                .collect();
            names.sort_unstable();
            let more = names.len().saturating_sub(10);
            names.truncate(10);
            let mut text = names
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            if more > 0 {
                text.push_str(&format!(" and {more} more"));
            }
            text
        }
        let emotes: usize = self.emotes.values().map(HashMap::len).sum();
        format!(
            "{} profile record(s) [{}], {} channel record(s) [{}], {emotes} emote record(s), \
             {} list item(s), {} membership record(s), {} history record(s) and {} shared \
             file change(s)",
            self.profiles.len(),
            names(&self.profiles),
            self.channels.len(),
            names(&self.channels),
            self.lists.len(),
            self.members.len(),
            self.history.len(),
            self.links.len()
        )
    }
}

/// What the test hook's control file asks of each commit (see
/// [`FAULTS_ENV`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Fail as SQLite does when the disk is full.
    Full,
    /// Do not finish until the file says otherwise.
    Hold,
}

fn read_fault(path: &Path) -> Fault {
    match std::fs::read_to_string(path) {
        Ok(text) => match text.trim() {
            "full" => Fault::Full,
            "hold" => Fault::Hold,
            _ => Fault::None,
        },
        Err(_) => Fault::None,
    }
}

/// One commit of everything waiting.
/// Returns the shared files to remove now that it is committed.
fn attempt(
    conn: &mut Connection,
    data_dir: &Path,
    waiting: &mut Waiting,
    written: &Written,
    faults: Option<&Path>,
) -> rusqlite::Result<Vec<String>> {
    if let Some(path) = faults {
        loop {
            match read_fault(path) {
                Fault::None => break,
                Fault::Full => {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                        None,
                    ));
                }
                Fault::Hold => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
    if waiting.len() == 0 && waiting.links.is_empty() {
        return Ok(Vec::new());
    }
    waiting
        .links
        .write_files(data_dir)
        .map_err(|e| file_error("cannot write a shared file", &e))?;
    let tx = conn.transaction()?;
    let all = waiting.profiles.values().chain(waiting.channels.values());
    for change in all.chain(waiting.lists.values()) {
        apply(&tx, change, written.holds(change))?;
    }
    // Emotes of channels deleted since (a channel of the same name made
    // anew meanwhile starts without them), then the emotes changed since.
    for channel in &waiting.cleared {
        clear_emotes(&tx, channel)?;
    }
    for change in waiting.emotes.values().flat_map(HashMap::values) {
        apply(&tx, change, false)?;
    }
    history::apply_waiting(&tx, &waiting.members, &waiting.history)?;
    let gone = waiting.links.apply(&tx)?;
    tx.commit()?;
    Ok(gone)
}

/// A failed file operation as the SQLite error it amounts to: a full disk
/// is `SQLITE_FULL`, anything else an I/O error with the OS's words.
fn file_error(what: &str, e: &io::Error) -> rusqlite::Error {
    let code = match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => rusqlite::ffi::SQLITE_FULL,
        _ => rusqlite::ffi::SQLITE_IOERR,
    };
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(code),
        Some(format!("{what}: {e}")),
    )
}

/// First pause before retrying a failed commit; it doubles up to
/// [`LAST_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// Longest pause between retries: how late a recovered disk is noticed.
const LAST_RETRY: Duration = Duration::from_secs(2);
/// While commits keep failing, one log line per this interval.
const LOG_EVERY: Duration = Duration::from_secs(60);

struct Failing {
    since: Instant,
    attempts: u64,
    delay: Duration,
    retry_at: Instant,
    logged_at: Instant,
    cause: String,
}

fn writer(
    mut conn: Connection,
    path: PathBuf,
    receiver: Receiver<Message>,
    shared: Arc<Shared>,
    notify: Arc<dyn Notify>,
    faults: Option<PathBuf>,
) {
    let mut waiting = Waiting::default();
    let mut written = Written::default();
    let mut committed: Ticket = 0;
    let mut failing: Option<Failing> = None;
    let mut stopping = false;
    let mut retention = history::Retention::default();
    let data_dir = path.parent().map_or_else(PathBuf::new, Path::to_owned);
    loop {
        // Wait for a batch while all is committed, for the next retry
        // while commits fail (taking batches meanwhile, so that nothing
        // piles up in the channel), not at all when stopping.
        let first = if stopping {
            None
        } else if let Some(f) = &failing {
            match receiver.recv_timeout(f.retry_at.saturating_duration_since(Instant::now())) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Message::Stop),
            }
        } else if let Some(wait) = retention.wait() {
            match receiver.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Message::Stop),
            }
        } else {
            Some(receiver.recv().unwrap_or(Message::Stop))
        };
        // Every batch already waiting goes into the same transaction.
        for m in first
            .into_iter()
            .chain(std::iter::from_fn(|| receiver.try_recv().ok()))
        {
            match m {
                Message::Batch(t, c) => waiting.merge(t, c),
                Message::Retention(days) => retention.set(days),
                Message::Stop => stopping = true,
            }
        }
        shared.waiting.store(waiting.len(), Ordering::Relaxed);
        if failing.is_none() && !stopping {
            retention.prune_if_due(&mut conn, &path);
        }
        if waiting.ticket == committed {
            if stopping {
                break;
            }
            continue;
        }
        if let Some(f) = &failing
            && !stopping
            && Instant::now() < f.retry_at
        {
            continue;
        }
        shared
            .attempt_since
            .store(shared.stamp(Instant::now()), Ordering::Release);
        let result = attempt(
            &mut conn,
            &data_dir,
            &mut waiting,
            &written,
            faults.as_deref(),
        );
        shared.attempt_since.store(0, Ordering::Release);
        match result {
            Ok(gone) => {
                links::remove_files(&data_dir, &gone);
                committed = waiting.ticket;
                written.committed(&waiting);
                waiting.clear();
                shared.waiting.store(0, Ordering::Relaxed);
                shared.committed.store(committed, Ordering::Release);
                if let Some(f) = failing.take() {
                    shared.failing_since.store(0, Ordering::Release);
                    log::warn!(
                        "database {}: commits succeed again after {:.1} s and {} failed attempt(s); \
                         everything that waited is saved",
                        path.display(),
                        f.since.elapsed().as_secs_f64(),
                        f.attempts
                    );
                }
                notify.notify();
            }
            Err(e) => {
                let cause = describe(&conn, &e).text;
                let now = Instant::now();
                match &mut failing {
                    None => {
                        // Nothing is confirmed until it commits: the loop
                        // holds the replies, and after a while reports
                        // their changes as failed and undoes them.
                        log::error!(
                            "database {}: commit failed: {cause}; {} kept, retrying until it succeeds",
                            path.display(),
                            waiting.summary()
                        );
                        shared.set_failure(&cause, now);
                        failing = Some(Failing {
                            since: now,
                            attempts: 1,
                            delay: FIRST_RETRY,
                            retry_at: now + FIRST_RETRY,
                            logged_at: now,
                            cause: cause.clone(),
                        });
                        notify.notify();
                    }
                    Some(f) => {
                        f.attempts += 1;
                        f.delay = (f.delay * 2).min(LAST_RETRY);
                        f.retry_at = now + f.delay;
                        if cause != f.cause {
                            shared.set_failure(&cause, f.since);
                            f.cause = cause.clone();
                        }
                        if now.duration_since(f.logged_at) >= LOG_EVERY {
                            f.logged_at = now;
                            log::error!(
                                "database {}: commits still fail after {} attempts in {:.0} s: {cause}; \
                                 {} waiting",
                                path.display(),
                                f.attempts,
                                f.since.elapsed().as_secs_f64(),
                                waiting.summary()
                            );
                        }
                    }
                }
                if stopping {
                    log::error!(
                        "database {}: stopping with {} not saved ({cause})",
                        path.display(),
                        waiting.summary()
                    );
                    break;
                }
            }
        }
    }
}

/// What the writer publishes for the loop. Only atomics are read on every
/// loop turn; the mutex holds the failure's text, written when commits
/// start failing and read when the loop reports it.
struct Shared {
    committed: AtomicU64,
    /// When commits started failing (see [`Shared::stamp`]); zero while
    /// they succeed.
    failing_since: AtomicU64,
    /// When the commit under way started; zero between commits.
    attempt_since: AtomicU64,
    /// Records waiting for a commit.
    waiting: AtomicUsize,
    cause: Mutex<String>,
    epoch: Instant,
}

impl Shared {
    /// An instant as milliseconds after `epoch`, plus one, so that zero
    /// can mean "none".
    fn stamp(&self, at: Instant) -> u64 {
        let ms = at.saturating_duration_since(self.epoch).as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1
    }

    /// How long ago a stamp was; `None` for zero.
    fn age(&self, stamp: &AtomicU64) -> Option<Duration> {
        let since = Duration::from_millis(stamp.load(Ordering::Acquire).checked_sub(1)?);
        Some(self.epoch.elapsed().saturating_sub(since))
    }

    fn set_failure(&self, cause: &str, since: Instant) {
        match self.cause.lock() {
            Ok(mut c) => *c = cause.to_owned(),
            Err(p) => *p.into_inner() = cause.to_owned(),
        }
        self.failing_since
            .store(self.stamp(since), Ordering::Release);
    }
}

/// A commit running this long counts as failing, from its start: a disk
/// that does not answer must not hold confirmations for ever either.
const STUCK: Duration = Duration::from_secs(1);

impl Store {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ticket the next [`Store::submit`] will return.
    pub fn next_ticket(&self) -> Ticket {
        self.next
    }

    /// Hands one loop turn's changes to the writer; returns their ticket.
    pub fn submit(&mut self, changes: Vec<Change>) -> Ticket {
        let ticket = self.next;
        self.next += 1;
        if self.sender.send(Message::Batch(ticket, changes)).is_err() {
            log::error!("database {}: the writer has stopped", self.path.display());
        }
        ticket
    }

    /// `shirakumo.mess` §18: from now on the writer deletes stored
    /// messages older than `days` days, about once an hour (0 keeps them
    /// for ever).
    pub fn set_history_days(&self, days: u64) {
        let _ = self.sender.send(Message::Retention(days));
    }

    /// The highest ticket whose changes are committed.
    pub fn committed(&self) -> Ticket {
        self.shared.committed.load(Ordering::Acquire)
    }

    /// How long commits have been failing, or the commit under way has
    /// been running once that is over a second; `None` while they
    /// succeed.
    pub fn failing_for(&self) -> Option<Duration> {
        let failing = self.shared.age(&self.shared.failing_since);
        let running = self.running();
        failing.max(running)
    }

    fn running(&self) -> Option<Duration> {
        self.shared
            .age(&self.shared.attempt_since)
            .filter(|d| *d >= STUCK)
    }

    /// Why commits fail, e.g. "the disk is full", or that the disk has not
    /// answered for a while; `None` while commits succeed.
    pub fn failure(&self) -> Option<String> {
        if self.shared.age(&self.shared.failing_since).is_some() {
            return Some(match self.shared.cause.lock() {
                Ok(c) => c.clone(),
                Err(p) => p.into_inner().clone(),
            });
        }
        let running = self.running()?;
        Some(format!(
            "the disk has not answered for {} s",
            running.as_secs()
        ))
    }

    /// Records (one per profile or channel, changes coalesced) handed to
    /// the writer and not yet committed.
    pub fn waiting(&self) -> usize {
        self.shared.waiting.load(Ordering::Relaxed)
    }

    /// Stops the writer after it committed everything submitted, or after
    /// one last failed attempt while commits fail (the writer logs what
    /// was not saved); waits for it (shutdown).
    pub fn close(mut self) {
        let _ = self.sender.send(Message::Stop);
        if let Some(w) = self.writer.take()
            && w.join().is_err()
        {
            log::error!("database {}: the writer failed", self.path.display());
        }
    }

    /// Like [`Store::close`], but waits at most `limit` (a commit that
    /// does not return, on a disk that hangs, must not hold up shutdown).
    /// Returns false if the writer had not finished.
    pub fn close_within(mut self, limit: Duration) -> bool {
        self.stop(limit)
    }

    fn stop(&mut self, limit: Duration) -> bool {
        let Some(w) = self.writer.take() else {
            return true;
        };
        let _ = self.sender.send(Message::Stop);
        // The writer holds the other end of `done` until it returns.
        match self.done.recv_timeout(limit) {
            Err(RecvTimeoutError::Timeout) => {
                log::error!(
                    "database {}: the writer did not finish within {} ms; {} record(s) and \
                     batches after ticket {} may not be saved",
                    self.path.display(),
                    limit.as_millis(),
                    self.waiting(),
                    self.committed()
                );
                false
            }
            _ => {
                if w.join().is_err() {
                    log::error!("database {}: the writer failed", self.path.display());
                }
                true
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(1));
    }
}

/// Reads `lichat.db` without starting a writer (tools and tests).
pub fn read_snapshot(dir: &Path) -> Result<Snapshot, StoreError> {
    let path = dir.join(FILE_NAME);
    let conn = Connection::open(&path).map_err(|e| err(&path, e))?;
    prepare(&conn).map_err(|e| err(&path, e))?;
    load(&conn).map_err(|e| err(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    /// An error as SQLite returns it, with its message.
    fn sqlite(code: i32) -> rusqlite::Error {
        let message = ffi::code_to_str(code).to_owned();
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message))
    }

    #[test]
    fn a_full_disk_is_called_so_whichever_way_sqlite_reports_it() {
        // A database on a full tmpfs fails its first read with this: SQLite
        // cannot grow the WAL index, and the OS said ENOSPC.
        let d = describe_error(&sqlite(ffi::SQLITE_IOERR_SHMSIZE), 28);
        assert!(d.full);
        assert_eq!(d.text, "the disk is full (No space left on device)");
        // EDQUOT: the user's quota is as full as a disk.
        assert!(describe_error(&sqlite(ffi::SQLITE_IOERR_WRITE), 122).full);
        // A fresh database on a full disk: SQLITE_FULL, no OS error kept.
        let d = describe_error(&sqlite(ffi::SQLITE_FULL), 0);
        assert!(d.full);
        assert_eq!(d.text, DISK_FULL);
    }

    #[test]
    fn other_errors_keep_sqlites_text_and_the_os_error_of_an_io_failure() {
        let d = describe_error(&sqlite(ffi::SQLITE_IOERR_READ), 5);
        assert!(!d.full);
        assert_eq!(d.text, "disk I/O error (Input/output error)");
        // An OS error left from before is not blamed for a non-I/O error.
        let d = describe_error(&sqlite(ffi::SQLITE_NOTADB), 28);
        assert!(!d.full);
        assert_eq!(d.text, "file is not a database");
    }
}
