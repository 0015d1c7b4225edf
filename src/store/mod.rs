//! Durable state in `lichat.db` (SQLite, WAL, `synchronous=FULL`):
//! registered profiles, regular channels, and server-wide lists.
//!
//! A commit with a full fsync takes several milliseconds on ordinary disks,
//! far more than the event loop may stall, so commits run on a writer
//! thread owned by this module. The loop hands over each turn's changes as
//! one batch with a ticket number; the writer commits every batch waiting
//! for it in one transaction (group commit), publishes the highest
//! committed ticket and wakes the loop, which then releases the replies
//! that waited for those tickets. The database is written through and
//! read only at start-up.

use crate::engine::{Change, ChannelRecord, Password, Profile, Snapshot};
use crate::protocol::{Rule, name_key};
use crate::wire::{self, Known, Value};
use rusqlite::{Connection, params};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// The database file's name inside the data directory.
pub const FILE_NAME: &str = "lichat.db";

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

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

/// Something the writer thread is woken with when a batch committed.
pub trait Notify: Send + Sync + 'static {
    /// Called on the writer thread after each commit.
    fn notify(&self);
}

impl Notify for mio::Waker {
    fn notify(&self) {
        if let Err(e) = self.wake() {
            log::error!("cannot wake the event loop after a commit: {e}");
        }
    }
}

/// No notification: for tools and tests that wait with [`Store::sync`].
pub struct NoNotify;

impl Notify for NoNotify {
    fn notify(&self) {}
}

enum Message {
    Batch(Ticket, Vec<Change>),
    Stop,
}

/// The durable store: a writer thread and the tickets it has committed.
pub struct Store {
    path: PathBuf,
    sender: Sender<Message>,
    committed: Arc<AtomicU64>,
    next: Ticket,
    writer: Option<JoinHandle<()>>,
}

fn err(path: &Path, e: impl fmt::Display) -> StoreError {
    StoreError {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Opens (creating if needed) `lichat.db` in `dir`, checks its integrity,
/// migrates its schema and loads everything in one pass.
pub fn open(dir: &Path, notify: Arc<dyn Notify>) -> Result<(Store, Snapshot), StoreError> {
    let path = dir.join(FILE_NAME);
    let conn = Connection::open(&path).map_err(|e| err(&path, e))?;
    prepare(&conn).map_err(|e| err(&path, e))?;
    let snapshot = load(&conn).map_err(|e| err(&path, e))?;
    let committed = Arc::new(AtomicU64::new(0));
    let (sender, receiver) = channel();
    let writer = {
        let committed = committed.clone();
        let path = path.clone();
        std::thread::Builder::new()
            .name("lichat-store".into())
            .spawn(move || writer(conn, path, receiver, committed, notify))
            .map_err(|e| err(&dir.join(FILE_NAME), e))?
    };
    Ok((
        Store {
            path,
            sender,
            committed,
            next: 1,
            writer: Some(writer),
        },
        snapshot,
    ))
}

fn prepare(conn: &Connection) -> Result<(), String> {
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| format!("cannot be read: {e}"))?;
    if check != "ok" {
        return Err(format!("fails its integrity check: {check}"));
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("cannot switch to WAL mode (got {mode})"));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| e.to_string())?;
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
];

fn migrate(conn: &Connection) -> Result<(), String> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
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
        step().map_err(|e| format!("migration to schema version {} failed: {e}", i + 1))?;
    }
    Ok(())
}

fn time(v: i64) -> u64 {
    v.max(0) as u64
}

fn load(conn: &Connection) -> Result<Snapshot, String> {
    let mut snapshot = Snapshot::default();
    let mut stmt = conn
        .prepare("SELECT name, salt, iterations, hash, registered_on, last_used FROM profiles")
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    for row in rows {
        let (name, salt, iterations, hash, registered_on, last_used) =
            row.map_err(|e| e.to_string())?;
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
        });
    }
    let mut stmt = conn
        .prepare("SELECT name, registrant, rules, lifetime, last_used FROM channels")
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    for row in rows {
        let (name, registrant, rules, lifetime, last_used) = row.map_err(|e| e.to_string())?;
        let rules = rules_from_text(&rules)
            .ok_or_else(|| format!("the channel {name:?} has damaged permission rules"))?;
        snapshot.channels.push(ChannelRecord {
            name,
            registrant,
            rules,
            lifetime: time(lifetime),
            last_used: time(last_used),
        });
    }
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

fn apply(tx: &rusqlite::Transaction<'_>, change: &Change) -> rusqlite::Result<()> {
    match change {
        Change::Profile(p) => {
            tx.prepare_cached(
                "INSERT INTO profiles (key, name, salt, iterations, hash, registered_on, last_used)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(key) DO UPDATE SET name = ?2, salt = ?3, iterations = ?4,
                   hash = ?5, registered_on = ?6, last_used = ?7",
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
        Change::DeleteProfile(name) => {
            tx.prepare_cached("DELETE FROM profiles WHERE key = ?1")?
                .execute(params![&*name_key(name)])?;
        }
        Change::Channel(c) => {
            tx.prepare_cached(
                "INSERT INTO channels (key, name, registrant, rules, lifetime, last_used)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(key) DO UPDATE SET name = ?2, registrant = ?3, rules = ?4,
                   lifetime = ?5, last_used = ?6",
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
        Change::DeleteChannel(name) => {
            tx.prepare_cached("DELETE FROM channels WHERE key = ?1")?
                .execute(params![&*name_key(name)])?;
        }
    }
    Ok(())
}

fn commit(conn: &mut Connection, batches: &[(Ticket, Vec<Change>)]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for (_, changes) in batches {
        for change in changes {
            apply(&tx, change)?;
        }
    }
    tx.commit()
}

fn writer(
    mut conn: Connection,
    path: PathBuf,
    receiver: Receiver<Message>,
    committed: Arc<AtomicU64>,
    notify: Arc<dyn Notify>,
) {
    let mut batches: Vec<(Ticket, Vec<Change>)> = Vec::new();
    let mut stopping = false;
    while !stopping {
        // Wait for one batch, then take every batch already waiting: they
        // all go into one transaction.
        match receiver.recv() {
            Ok(Message::Batch(t, c)) => batches.push((t, c)),
            Ok(Message::Stop) | Err(_) => stopping = true,
        }
        while let Ok(m) = receiver.try_recv() {
            match m {
                Message::Batch(t, c) => batches.push((t, c)),
                Message::Stop => stopping = true,
            }
        }
        if batches.is_empty() {
            continue;
        }
        let mut delay = Duration::from_millis(100);
        loop {
            match commit(&mut conn, &batches) {
                Ok(()) => break,
                Err(e) => {
                    // Nothing is confirmed until it commits: the replies
                    // stay held while the disk refuses.
                    log::error!("database {}: commit failed, retrying: {e}", path.display());
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        let last = batches.last().map_or(0, |b| b.0);
        batches.clear();
        committed.store(last, Ordering::Release);
        notify.notify();
    }
}

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

    /// The highest ticket whose changes are committed.
    pub fn committed(&self) -> Ticket {
        self.committed.load(Ordering::Acquire)
    }

    /// Waits until everything submitted is committed, then stops the
    /// writer (shutdown).
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.sender.send(Message::Stop);
        if let Some(w) = self.writer.take()
            && w.join().is_err()
        {
            log::error!("database {}: the writer failed", self.path.display());
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads `lichat.db` without starting a writer (tools and tests).
pub fn read_snapshot(dir: &Path) -> Result<Snapshot, StoreError> {
    let path = dir.join(FILE_NAME);
    let conn = Connection::open(&path).map_err(|e| err(&path, e))?;
    prepare(&conn).map_err(|e| err(&path, e))?;
    load(&conn).map_err(|e| err(&path, e))
}
