//! The stored history of `shirakumo.mess` §18 and the memberships of §1:
//! its tables, how the writer records into them (a bounded queue riding
//! on the batched commit), retention, and the search thread that answers
//! [`SearchJob`]s on a read-only connection of its own, so that a slow
//! query holds up neither the event loop nor the commits.
//!
//! Rows: one per stored update, numbered by the engine, with the channel
//! and sender as name keys, `clock`, the `id` as printed, the `text`, and
//! the bytes the update was sent with. An index on (channel, clock) gives
//! step 4's order; an FTS5 `trigram` index over `text` narrows string
//! matches to the rows holding the trigrams of their literal runs before
//! the exact test. The writer keeps that index itself, row by row in the
//! same transaction (no triggers: a trigger's statement savepoint makes
//! FTS5 write out its pending terms at every row).

use super::{StoreError, err};
use crate::engine::{
    Change, HistoryRecord, MemberRecord, SearchDone, SearchJob, SearchKind, Snapshot,
};
use crate::protocol::{NameKey, name_key};
use crate::wake::Notify;
use crate::wire::{self, Known, Object, Value};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OpenFlags, Transaction, params, params_from_iter};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Schema 2 -> 3.
pub(super) const MIGRATION: &str = "
    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        sender TEXT NOT NULL,
        uid TEXT NOT NULL,
        clock INTEGER NOT NULL,
        stored INTEGER NOT NULL,
        text TEXT,
        bytes BLOB NOT NULL
    );
    CREATE INDEX history_clock ON history (channel, clock);
    CREATE INDEX history_message ON history (channel, sender, uid);
    CREATE VIRTUAL TABLE history_text USING fts5(
        text, content = 'history', content_rowid = 'id', tokenize = 'trigram'
    );
    CREATE TRIGGER history_insert AFTER INSERT ON history WHEN new.text IS NOT NULL BEGIN
        INSERT INTO history_text (rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER history_delete AFTER DELETE ON history WHEN old.text IS NOT NULL BEGIN
        INSERT INTO history_text (history_text, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    CREATE TRIGGER history_update AFTER UPDATE OF text ON history BEGIN
        INSERT INTO history_text (history_text, rowid, text)
            SELECT 'delete', old.id, old.text WHERE old.text IS NOT NULL;
        INSERT INTO history_text (rowid, text)
            SELECT new.id, new.text WHERE new.text IS NOT NULL;
    END;
    CREATE TABLE members (
        profile TEXT NOT NULL,
        channel TEXT NOT NULL,
        profile_name TEXT NOT NULL,
        channel_name TEXT NOT NULL,
        registered INTEGER NOT NULL,
        since INTEGER NOT NULL,
        gap_from INTEGER,
        gap_to INTEGER,
        away INTEGER,
        PRIMARY KEY (profile, channel)
    );";

/// Schema 3 -> 4: the trigram index keeps neither positions nor sizes
/// (`detail=none`, `columnsize=0`: searches ask for each trigram as a
/// term and test matches exactly), and the writer keeps it without
/// triggers.
pub(super) const MIGRATION_4: &str = "
    DROP TRIGGER history_insert;
    DROP TRIGGER history_delete;
    DROP TRIGGER history_update;
    DROP TABLE history_text;
    CREATE VIRTUAL TABLE history_text USING fts5(
        text, content = 'history', content_rowid = 'id', tokenize = 'trigram',
        detail = none, columnsize = 0
    );
    INSERT INTO history_text (history_text) VALUES ('rebuild');";

/// Records the queue holds at most while they wait for a commit.
pub const QUEUE_RECORDS: usize = 200_000;
/// Bytes of records the queue holds at most.
pub const QUEUE_BYTES: usize = 64 << 20;

/// The history records waiting for a commit, in order, bounded: once
/// full, further records are dropped with a logged error (the history
/// misses them; confirmed changes are not held up or lost).
#[derive(Default)]
pub(super) struct Queue {
    items: Vec<Change>,
    bytes: usize,
    dropped: u64,
}

impl Queue {
    pub fn push(&mut self, change: Change) {
        let size = match &change {
            Change::History(r) => r.bytes.len() + r.text.as_ref().map_or(0, String::len) + 64,
            _ => 64,
        };
        if self.items.len() >= QUEUE_RECORDS || self.bytes + size > QUEUE_BYTES {
            if self.dropped == 0 {
                log::error!(
                    "history: {} record(s) wait for a commit, the most kept; \
                     messages are not recorded until commits succeed again",
                    self.items.len()
                );
            }
            self.dropped += 1;
            return;
        }
        self.bytes += size;
        self.items.push(change);
    }

    /// A channel was deleted: what it recorded before goes too.
    pub fn forget_channel(&mut self, key: &NameKey) {
        self.items.retain(|c| match c {
            Change::History(r) => name_key(&r.channel) != *key,
            Change::Redact { channel, .. } => name_key(channel) != *key,
            _ => true,
        });
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn clear(&mut self) {
        if self.dropped > 0 {
            log::error!(
                "history: {} message(s) were not recorded while commits failed",
                self.dropped
            );
        }
        *self = Queue::default();
    }
}

fn clamp(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// Lichat universal time now.
fn universal_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + crate::engine::UNIX_TO_UNIVERSAL
}

/// Start-up: the memberships (all away now, until their users come
/// back) and the next row number.
pub(super) fn load(conn: &Connection, snapshot: &mut Snapshot) -> rusqlite::Result<()> {
    let next: i64 = conn.query_row(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'history'), 0)",
        [],
        |r| r.get(0),
    )?;
    let next = next.max(0) as u64 + 1;
    snapshot.history_next = next;
    let mut stmt = conn.prepare(
        "SELECT profile_name, channel_name, registered, since, gap_from, gap_to, away FROM members",
    )?;
    let rows = stmt.query_map([], |r| {
        let gap = match (r.get::<_, Option<i64>>(4)?, r.get::<_, Option<i64>>(5)?) {
            (Some(a), Some(b)) => Some((a.max(0) as u64, b.max(0) as u64)),
            _ => None,
        };
        Ok(MemberRecord {
            profile: r.get(0)?,
            channel: r.get(1)?,
            registered: r.get::<_, i64>(2)?.max(0) as u64,
            since: r.get::<_, i64>(3)?.max(0) as u64,
            gap,
            away: Some(
                r.get::<_, Option<i64>>(6)?
                    .map_or(next, |a| (a.max(0) as u64).min(next)),
            ),
        })
    })?;
    for row in rows {
        snapshot.members.push(row?);
    }
    // Written at once: if the server stops again before they come back,
    // what was stored in between is still not theirs.
    if !snapshot.members.is_empty() {
        conn.execute(
            "UPDATE members SET away = ?1 WHERE away IS NULL",
            params![clamp(next)],
        )?;
    }
    Ok(())
}

/// The writer's part of one commit: memberships, then history records
/// in order.
pub(super) fn apply_waiting(
    tx: &Transaction<'_>,
    members: &std::collections::HashMap<(NameKey, NameKey), Change>,
    queue: &Queue,
) -> rusqlite::Result<()> {
    for change in members.values() {
        apply(tx, change)?;
    }
    if queue.items.is_empty() {
        return Ok(());
    }
    let stored = clamp(universal_now());
    for change in &queue.items {
        match change {
            Change::History(r) => insert(tx, r, stored)?,
            other => apply(tx, other)?,
        }
    }
    Ok(())
}

/// Stores one record and indexes its text (a row already stored, of the
/// same number, is kept as it is).
fn insert(tx: &Transaction<'_>, r: &HistoryRecord, stored: i64) -> rusqlite::Result<()> {
    let added = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO history (id, channel, sender, uid, clock, stored, text, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            clamp(r.row),
            &*name_key(&r.channel),
            &*name_key(&r.from),
            r.id,
            clamp(r.clock),
            stored,
            r.text,
            &r.bytes[..],
        ])?;
    if added == 1
        && let Some(text) = &r.text
    {
        tx.prepare_cached("INSERT INTO history_text (rowid, text) VALUES (?1, ?2)")?
            .execute(params![clamp(r.row), text])?;
    }
    Ok(())
}

/// Takes the rows `WHERE` selects (a condition on `history`, its
/// parameters `args`) out of the trigram index, before they are deleted or
/// lose their text.
fn unindex(
    tx: &Transaction<'_>,
    condition: &str,
    args: impl rusqlite::Params,
) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO history_text (history_text, rowid, text)
         SELECT 'delete', id, text FROM history WHERE text IS NOT NULL AND ({condition})"
    ))?
    .execute(args)?;
    Ok(())
}

/// One history or membership change.
pub(super) fn apply(tx: &Transaction<'_>, change: &Change) -> rusqlite::Result<()> {
    match change {
        Change::History(r) => insert(tx, r, clamp(universal_now()))?,
        Change::Redact { channel, from, id } => redact(tx, channel, from, id)?,
        Change::Member(m) => {
            tx.prepare_cached(
                "INSERT INTO members (profile, channel, profile_name, channel_name, registered,
                   since, gap_from, gap_to, away)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (profile, channel) DO UPDATE SET profile_name = ?3,
                   channel_name = ?4, registered = ?5, since = ?6, gap_from = ?7, gap_to = ?8,
                   away = ?9",
            )?
            .execute(params![
                &*name_key(&m.profile),
                &*name_key(&m.channel),
                m.profile,
                m.channel,
                clamp(m.registered),
                clamp(m.since),
                m.gap.map(|g| clamp(g.0)),
                m.gap.map(|g| clamp(g.1)),
                m.away.map(clamp),
            ])?;
        }
        Change::DeleteMember { profile, channel } => {
            tx.prepare_cached("DELETE FROM members WHERE profile = ?1 AND channel = ?2")?
                .execute(params![&*name_key(profile), &*name_key(channel)])?;
        }
        _ => {}
    }
    Ok(())
}

/// §18 "a means to delete updates": the message `id` of `from` in
/// `channel`, and its edits, lose their text. What is kept of each is
/// its class, `id`, `clock`, `from` and `channel`, with an empty `text`.
fn redact(tx: &Transaction<'_>, channel: &str, from: &str, id: &str) -> rusqlite::Result<()> {
    let rows: Vec<(i64, Vec<u8>)> = tx
        .prepare_cached(
            "SELECT id, bytes FROM history WHERE channel = ?1 AND sender = ?2 AND uid = ?3",
        )?
        .query_map(params![&*name_key(channel), &*name_key(from), id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (row, bytes) in rows {
        let Ok(update) = wire::read_object(&bytes) else {
            continue;
        };
        let mut kept = Object::new(update.class.clone());
        for key in [Known::KId, Known::KClock, Known::KFrom, Known::KChannel] {
            if let Some(v) = update.get_raw(key) {
                kept.push(key, v.clone());
            }
        }
        kept.push(Known::KText, Value::string(""));
        let mut out = Vec::new();
        if wire::print_object(&kept, &mut out).is_err() {
            continue;
        }
        unindex(tx, "id = ?1", params![row])?;
        tx.prepare_cached("UPDATE history SET text = NULL, bytes = ?2 WHERE id = ?1")?
            .execute(params![row, out])?;
    }
    Ok(())
}

/// §18 a channel expired or was destroyed: its history goes, and the
/// memberships in it.
pub(super) fn delete_channel(tx: &Transaction<'_>, key: &NameKey) -> rusqlite::Result<()> {
    unindex(tx, "channel = ?1", params![&**key])?;
    tx.prepare_cached("DELETE FROM history WHERE channel = ?1")?
        .execute(params![&**key])?;
    tx.prepare_cached("DELETE FROM members WHERE channel = ?1")?
        .execute(params![&**key])?;
    Ok(())
}

/// A profile expired: its memberships go.
pub(super) fn delete_profile(tx: &Transaction<'_>, key: &NameKey) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM members WHERE profile = ?1")?
        .execute(params![&**key])?;
    Ok(())
}

/// How often the writer prunes old messages.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Rows deleted per transaction when pruning, and transactions per turn.
const PRUNE_CHUNK: usize = 5000;
const PRUNE_CHUNKS: usize = 20;

/// The writer's retention (`--history-days`).
#[derive(Default)]
pub(super) struct Retention {
    days: u64,
    due: Option<Instant>,
}

impl Retention {
    pub fn set(&mut self, days: u64) {
        self.days = days;
        self.due = (days > 0).then(Instant::now);
    }

    /// How long the writer may wait for a batch before pruning is due.
    pub fn wait(&self) -> Option<Duration> {
        self.due
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Deletes messages stored more than `days` days ago, in chunks
    /// (rows are numbered in the order they were stored, so the oldest
    /// come first); when many remain, comes back soon for more.
    pub fn prune_if_due(&mut self, conn: &mut Connection, path: &Path) {
        let Some(due) = self.due else {
            return;
        };
        if Instant::now() < due {
            return;
        }
        let cutoff = clamp(universal_now().saturating_sub(self.days.saturating_mul(86_400)));
        let mut total = 0;
        let mut more = false;
        for _ in 0..PRUNE_CHUNKS {
            let mut step = || -> rusqlite::Result<usize> {
                let tx = conn.transaction()?;
                let oldest = "id IN (SELECT id FROM history ORDER BY id LIMIT ?1) AND stored < ?2";
                unindex(&tx, oldest, params![PRUNE_CHUNK as i64, cutoff])?;
                let n = tx.execute(
                    &format!("DELETE FROM history WHERE {oldest}"),
                    params![PRUNE_CHUNK as i64, cutoff],
                )?;
                tx.commit()?;
                Ok(n)
            };
            match step() {
                Ok(n) => {
                    total += n;
                    if n < PRUNE_CHUNK {
                        more = false;
                        break;
                    }
                    more = true;
                }
                Err(e) => {
                    log::error!(
                        "database {}: pruning the history failed: {e}",
                        path.display()
                    );
                    break;
                }
            }
        }
        if total > 0 {
            log::info!(
                "history: {total} message(s) older than {} day(s) deleted",
                self.days
            );
        }
        let next = if more {
            Duration::from_millis(200)
        } else {
            PRUNE_EVERY
        };
        self.due = Some(Instant::now() + next);
    }
}

/// Reads the history on a read-only connection of its own.
pub struct HistoryReader {
    conn: Connection,
}

impl HistoryReader {
    /// Opens `lichat.db` in `dir` read-only; the store must have created
    /// it (with [`super::open`]) first.
    pub fn open(dir: &Path) -> Result<HistoryReader, StoreError> {
        let path = dir.join(super::FILE_NAME);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| err(&path, e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| err(&path, e))?;
        Ok(HistoryReader { conn })
    }

    /// Runs a job; an SQLite error is the outcome's `error`.
    pub fn run(&mut self, job: &SearchJob) -> SearchDone {
        let results = match &job.kind {
            SearchKind::Search {
                query,
                offset,
                limit,
            } => self.search(&job.channel, query, *offset, *limit),
            SearchKind::Backfill {
                window,
                limit,
                bytes,
            } => self.backfill(&job.channel, window, *limit, *bytes),
        };
        match results {
            Ok(results) => SearchDone {
                id: job.id,
                results,
                error: None,
            },
            Err(e) => {
                log::error!("history: a search failed: {e}");
                SearchDone {
                    id: job.id,
                    results: Vec::new(),
                    error: Some(e.to_string()),
                }
            }
        }
    }

    /// §18 steps 2–6: rows of the channel in `clock` order, narrowed by
    /// the clock range, exact sender names and the trigram index, then
    /// each tested exactly against the query. With a text filter, the
    /// first [`SCAN_FIRST`] rows in `clock` order are tested without the
    /// index (a common string fills the page from them at once, where the
    /// index would name most of the channel). For the rows after them:
    /// when the trigram index, or the index of senders for a query of
    /// exact senders, names at most [`INDEX_NAMES`] rows, the rows the
    /// one naming fewer names, sorted; when both name more, the walk in
    /// `clock` order goes on (the matches are then not rare enough for
    /// an index to help).
    fn search(
        &mut self,
        channel: &str,
        query: &crate::engine::Query,
        offset: u64,
        limit: usize,
    ) -> rusqlite::Result<Vec<Box<[u8]>>> {
        let (lo, hi) = query.clock_bounds();
        if query.matches_nothing() || lo > hi || limit == 0 {
            return Ok(Vec::new());
        }
        let mut page = Page {
            query,
            skip: offset,
            limit,
            found: Vec::new(),
            last: None,
        };
        let senders: Option<Vec<String>> = query
            .exact_senders()
            .map(|s| s.iter().map(|n| String::from(name_key(n))).collect());
        if senders.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let select = "SELECT bytes, clock, id, sender FROM history";
        let range = "channel = ?1 AND clock >= ?2 AND clock <= ?3";
        let mut args = vec![
            Sql::Text(channel.to_owned()),
            Sql::Integer(clamp(lo)),
            Sql::Integer(clamp(hi)),
        ];
        let Some(text) = query.text_filter() else {
            let mut sql = format!("{select} WHERE {range}");
            if let Some(senders) = &senders {
                let list = placeholders(args.len() + 1, senders.len());
                sql.push_str(&format!(" AND sender IN ({list})"));
                args.extend(senders.iter().cloned().map(Sql::Text));
            }
            sql.push_str(" ORDER BY clock, id");
            self.scan(&sql, args, None, &mut page)?;
            return Ok(page.found);
        };
        let first = format!(
            "{select} INDEXED BY history_clock WHERE {range} ORDER BY clock, id LIMIT {SCAN_FIRST}"
        );
        if !self.scan(&first, args.clone(), senders.as_deref(), &mut page)? {
            return Ok(page.found);
        }
        let Some((clock, id)) = page.last else {
            return Ok(page.found);
        };
        let by_text = self.count(
            &format!("SELECT rowid FROM history_text WHERE history_text MATCH ?1 LIMIT {LIMIT}"),
            vec![Sql::Text(text.clone())],
        )?;
        let by_sender = match &senders {
            Some(senders) => self.count(
                &format!(
                    "SELECT 1 FROM history INDEXED BY history_message
                       WHERE channel = ?1 AND sender IN ({}) LIMIT {LIMIT}",
                    placeholders(2, senders.len())
                ),
                std::iter::once(channel.to_owned())
                    .chain(senders.iter().cloned())
                    .map(Sql::Text)
                    .collect(),
            )?,
            None => usize::MAX,
        };
        args.extend([Sql::Integer(clock), Sql::Integer(id)]);
        let after = "(clock > ?4 OR (clock = ?4 AND id > ?5))";
        let rest = if by_text <= INDEX_NAMES && by_text <= by_sender {
            args.push(Sql::Text(text));
            // `+`: the rows by number from the index, not a walk of the
            // channel probing each.
            format!(
                "{select} WHERE id IN (SELECT rowid FROM history_text WHERE history_text MATCH ?6)
                   AND +channel = ?1 AND +clock >= ?2 AND +clock <= ?3 AND {after}
                 ORDER BY clock, id"
            )
        } else if let Some(senders) = senders.as_ref().filter(|_| by_sender <= INDEX_NAMES) {
            let list = placeholders(args.len() + 1, senders.len());
            args.extend(senders.iter().cloned().map(Sql::Text));
            format!(
                "{select} INDEXED BY history_message WHERE channel = ?1 AND sender IN ({list})
                   AND clock >= ?2 AND clock <= ?3 AND {after} ORDER BY clock, id"
            )
        } else {
            format!(
                "{select} INDEXED BY history_clock WHERE {range} AND {after} ORDER BY clock, id"
            )
        };
        self.scan(&rest, args, senders.as_deref(), &mut page)?;
        Ok(page.found)
    }

    /// How many rows `sql` (with a `LIMIT` of [`LIMIT`]) selects.
    fn count(&mut self, sql: &str, args: Vec<Sql>) -> rusqlite::Result<usize> {
        let n: i64 = self
            .conn
            .prepare_cached(&format!("SELECT count(*) FROM ({sql})"))?
            .query_row(params_from_iter(args), |r| r.get(0))?;
        Ok(n.max(0) as usize)
    }

    /// Tests the rows `sql` selects (`bytes, clock, id, sender`) against
    /// the page's query, in order, until the page is full; whether more
    /// rows may follow (the page is not full and `sql` returned as many
    /// rows as its `LIMIT` allowed).
    fn scan(
        &mut self,
        sql: &str,
        args: Vec<Sql>,
        senders: Option<&[String]>,
        page: &mut Page<'_>,
    ) -> rusqlite::Result<bool> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params_from_iter(args))?;
        let mut seen = 0;
        while let Some(row) = rows.next()? {
            seen += 1;
            page.last = Some((row.get(1)?, row.get(2)?));
            if let Some(senders) = senders {
                let sender = row.get_ref(3)?.as_str()?;
                if !senders.iter().any(|s| s == sender) {
                    continue;
                }
            }
            let bytes = row.get_ref(0)?.as_blob()?;
            if page.offer(bytes) {
                return Ok(false);
            }
        }
        Ok(seen >= SCAN_FIRST)
    }

    /// §1 step 2 from the history: the latest rows of the window.
    fn backfill(
        &mut self,
        channel: &str,
        window: &crate::engine::Window,
        limit: usize,
        max_bytes: usize,
    ) -> rusqlite::Result<Vec<Box<[u8]>>> {
        if window.from >= window.below || limit == 0 {
            return Ok(Vec::new());
        }
        let (gap_from, gap_to) = window.gap.unwrap_or((0, 0));
        let mut stmt = self.conn.prepare_cached(
            "SELECT bytes FROM history WHERE channel = ?1 AND id >= ?2 AND id < ?3
               AND NOT (id >= ?4 AND id < ?5) AND clock >= ?6 ORDER BY id DESC",
        )?;
        let mut rows = stmt.query(params![
            channel,
            clamp(window.from),
            clamp(window.below),
            clamp(gap_from),
            clamp(gap_to),
            clamp(window.since.unwrap_or(0)),
        ])?;
        let mut found: Vec<Box<[u8]>> = Vec::new();
        let mut bytes = 0;
        while let Some(row) = rows.next()? {
            let b = row.get_ref(0)?.as_blob()?;
            if bytes + b.len() + 1 > max_bytes {
                break;
            }
            bytes += b.len() + 1;
            found.push(b.into());
            if found.len() >= limit {
                break;
            }
        }
        found.reverse();
        Ok(found)
    }
}

/// Rows a text search tests in `clock` order before it asks the trigram
/// index for the rest (§18 step 3).
const SCAN_FIRST: usize = 4000;

/// Most rows the trigram index may name for a text search to take them
/// from it, sorted, rather than walk on in `clock` order (§18 step 3).
const INDEX_NAMES: usize = 10_000;

/// Rows counted at most to learn whether an index names few enough.
const LIMIT: usize = INDEX_NAMES + 1;

/// `?first, ?first+1, …`, `n` of them.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A search's page as it fills (§18 steps 5–6).
struct Page<'q> {
    query: &'q crate::engine::Query,
    skip: u64,
    limit: usize,
    found: Vec<Box<[u8]>>,
    /// The (clock, row) of the last row tested.
    last: Option<(i64, i64)>,
}

impl Page<'_> {
    /// Tests one stored update; whether the page is now full.
    fn offer(&mut self, bytes: &[u8]) -> bool {
        let Ok(update) = wire::read_object(bytes) else {
            return false;
        };
        if !self.query.matches(&update) {
            return false;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        self.found.push(bytes.into());
        self.found.len() >= self.limit
    }
}

/// The search thread: runs [`SearchJob`]s one after the other on its own
/// read-only connection and wakes the loop with each result.
pub struct Searcher {
    jobs: Option<Sender<SearchJob>>,
    done: Receiver<SearchDone>,
    thread: Option<JoinHandle<()>>,
}

impl Searcher {
    /// Opens the read-only connection and starts the thread.
    pub fn start(dir: &Path, notify: Arc<dyn Notify>) -> Result<Searcher, StoreError> {
        let mut reader = HistoryReader::open(dir)?;
        let (jobs, inbox) = channel::<SearchJob>();
        let (results, done) = channel::<SearchDone>();
        let thread = std::thread::Builder::new()
            .name("lichat-search".into())
            .spawn(move || {
                for job in inbox {
                    let outcome = reader.run(&job);
                    if results.send(outcome).is_err() {
                        break;
                    }
                    notify.notify();
                }
            })
            .map_err(|e| err(&dir.join(super::FILE_NAME), e))?;
        Ok(Searcher {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    /// Queues a job.
    pub fn submit(&self, job: SearchJob) {
        if let Some(jobs) = &self.jobs
            && jobs.send(job).is_err()
        {
            log::error!("the search thread has stopped");
        }
    }

    /// A finished job, if one is ready.
    pub fn try_recv(&self) -> Option<SearchDone> {
        self.done.try_recv().ok()
    }
}

impl Drop for Searcher {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::error!("the search thread failed");
        }
    }
}
