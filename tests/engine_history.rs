//! shirakumo-history (§18 of `shirakumo.mess`): the engine records
//! messages, the store keeps them in `lichat.db`, searches run on the
//! store's read-only reader as the search thread runs them; and backfill
//! (§1) from the history across a restart.

mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Change, Config};
use lichat_tcp_server::store::history::HistoryReader;
use lichat_tcp_server::store::{self, Store};
use lichat_tcp_server::wire::{Known, Object, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

struct Wake(std::sync::Mutex<Sender<()>>);

impl store::Notify for Wake {
    fn notify(&self) {
        if let Ok(s) = self.0.lock() {
            let _ = s.send(());
        }
    }
}

/// A store in a fresh directory, the harness's changes written to it
/// and searches run against it.
struct Db {
    dir: PathBuf,
    store: Option<Store>,
    woken: Receiver<()>,
    reader: HistoryReader,
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lichat-history-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl Db {
    fn new(tag: &str) -> Db {
        Db::open(temp_dir(tag)).0
    }

    fn open(dir: PathBuf) -> (Db, lichat_tcp_server::engine::Snapshot) {
        let (tx, woken) = channel();
        let (store, snapshot) =
            store::open(&dir, Arc::new(Wake(std::sync::Mutex::new(tx)))).expect("store opens");
        let reader = HistoryReader::open(&dir).expect("reader opens");
        (
            Db {
                dir,
                store: Some(store),
                woken,
                reader,
            },
            snapshot,
        )
    }

    /// Writes the harness's changes and waits for their commit.
    fn sync(&mut self, h: &mut Harness) {
        let store = self.store.as_mut().expect("open");
        let ticket = store.submit(h.take_changes());
        while store.committed() < ticket {
            self.woken
                .recv_timeout(Duration::from_secs(10))
                .expect("the writer commits");
        }
    }

    /// Closes the store and opens it again: a restart.
    fn restart(mut self) -> (Db, lichat_tcp_server::engine::Snapshot) {
        if let Some(s) = self.store.take() {
            s.close();
        }
        let dir = self.dir.clone();
        drop(self);
        Db::open(dir)
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

/// Sends `update` on `conn`, commits, runs the searches it started and
/// returns what `conn` got.
fn ask(h: &mut Harness, db: &mut Db, conn: usize, update: &str) -> Vec<Object> {
    h.hold_searches = true;
    h.send(conn, update);
    db.sync(h);
    for job in std::mem::take(&mut h.held_searches) {
        let done = db.reader.run(&job);
        h.search_done(done);
    }
    h.take(conn)
}

/// The results of the `search` replies among `got`, in order.
fn results(got: &[Object]) -> Vec<Object> {
    got.iter()
        .filter(|o| class(o) == Known::SSearch)
        .flat_map(|o| {
            o.get(Known::KResults)
                .and_then(Value::as_list)
                .unwrap_or_default()
                .iter()
                .map(|v| Object::from_value(v.clone()).expect("each result is an update"))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn result_texts(got: &[Object]) -> Vec<String> {
    results(got)
        .iter()
        .map(|o| text(o, Known::KText).unwrap_or_default().to_owned())
        .collect()
}

/// A lobby (ann, bob, cat; ann and bob in "lobby") whose messages are in
/// `db`.
fn lobby_with(db: &mut Db, messages: &[&str]) -> Harness {
    let mut h = Harness::lobby();
    for (i, m) in messages.iter().enumerate() {
        h.expect_ok(
            1,
            &format!("(message :id {} :channel \"lobby\" :text \"{m}\")", 100 + i),
        );
    }
    db.sync(&mut h);
    h.take(2);
    h
}

fn search(h: &mut Harness, db: &mut Db, query: &str) -> Vec<String> {
    result_texts(&ask(
        h,
        db,
        2,
        &format!("(search :id 50 :channel \"lobby\" :query {query})"),
    ))
}

/// Sends `update` from bob and expects a `malformed-update` failure.
fn malformed(h: &mut Harness, update: &str) {
    let got = h.call(2, update);
    assert_eq!(
        classes_of(&got),
        [Known::MalformedUpdate],
        "{update}: {got:?}"
    );
}

/// The trigram index holds exactly the stored texts (FTS5's own check
/// fails otherwise).
fn assert_index_consistent(db: &Db) {
    rusqlite::Connection::open(db.path().join(store::FILE_NAME))
        .unwrap()
        .execute(
            "INSERT INTO history_text (history_text, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .expect("the trigram index matches the stored texts");
}

#[test]
fn connect_reply_advertises_shirakumo_history_and_shirakumo_search_18() {
    let mut h = Harness::new();
    h.open(1);
    let reply = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    let ext = strings(&reply[0], Known::KExtensions);
    assert!(ext.iter().any(|e| e == "shirakumo-history"), "{ext:?}");
    assert!(ext.iter().any(|e| e == "shirakumo-search"), "{ext:?}");
}

#[test]
fn search_18_step1_outsider_gets_not_in_channel() {
    let mut db = Db::new("step1");
    let mut h = lobby_with(&mut db, &["hello"]);
    h.expect_failure(
        3,
        "(search :id 9 :channel \"lobby\" :query (:text (\"*\")))",
        Known::NotInChannel,
    );
}

#[test]
fn search_18_step2_only_updates_posted_to_the_named_channel() {
    let mut db = Db::new("step2");
    let mut h = lobby_with(&mut db, &["in lobby"]);
    h.expect_ok(1, "(create :id 7 :channel \"other\")");
    h.expect_ok(1, "(message :id 8 :channel \"other\" :text \"in other\")");
    assert_eq!(search(&mut h, &mut db, "()"), ["in lobby"]);
    let got = ask(
        &mut h,
        &mut db,
        1,
        "(search :id 9 :channel \"other\" :query (:text (\"in*\")))",
    );
    assert_eq!(result_texts(&got), ["in other"]);
}

#[test]
fn search_18_step3_string_specs_match_with_any_none_or_more_and_escapes() {
    let mut db = Db::new("strings");
    let mut h = lobby_with(
        &mut db,
        &["hello world", "hallo", "50% off_now", "a*b", "help"],
    );
    assert_eq!(
        search(&mut h, &mut db, "(:text (\"hello world\"))"),
        ["hello world"]
    );
    assert_eq!(
        search(&mut h, &mut db, "(:text (\"hello\"))"),
        Vec::<String>::new(),
        "a spec matches the whole text"
    );
    assert_eq!(
        search(&mut h, &mut db, "(:text (\"h_llo*\"))"),
        ["hello world", "hallo"]
    );
    assert_eq!(search(&mut h, &mut db, "(:text (\"*lp\"))"), ["help"]);
    assert_eq!(
        search(&mut h, &mut db, "(:text (\"*off\\\\_now\"))"),
        ["50% off_now"]
    );
    assert_eq!(
        search(&mut h, &mut db, "(:text (\"a\\\\*b\"))"),
        ["a*b"],
        "an escaped * is a star"
    );
    // Several specs: any of them.
    assert_eq!(
        search(&mut h, &mut db, "(:text (\"hallo\" \"help\"))"),
        ["hallo", "help"]
    );
    // Case matters: the trigram index only narrows.
    assert_eq!(
        search(&mut h, &mut db, "(:text (\"HELLO*\"))"),
        Vec::<String>::new()
    );
    // A lone string is one spec; from is a string field too.
    assert_eq!(
        search(&mut h, &mut db, "(:from \"ann\" :text \"help\")"),
        ["help"]
    );
    assert_eq!(
        search(&mut h, &mut db, "(:from (\"bob\"))"),
        Vec::<String>::new()
    );
    assert_eq!(
        search(&mut h, &mut db, "(:from (\"a_n\") :text (\"he*\"))").len(),
        2
    );
}

#[test]
fn search_18_step3_time_ranges_are_inclusive_with_t_for_any() {
    let mut db = Db::new("time");
    let mut h = Harness::lobby();
    for (clock, t) in [(1000, "a"), (2000, "b"), (3000, "c")] {
        h.expect_ok(
            1,
            &format!("(message :id {clock} :clock {clock} :channel \"lobby\" :text \"{t}\")"),
        );
    }
    db.sync(&mut h);
    h.take(2);
    assert_eq!(search(&mut h, &mut db, "(:clock (2000 t))"), ["b", "c"]);
    assert_eq!(search(&mut h, &mut db, "(:clock (t 2000))"), ["a", "b"]);
    assert_eq!(search(&mut h, &mut db, "(:clock (1000 1000))"), ["a"]);
    assert_eq!(search(&mut h, &mut db, "(:clock (t t))"), ["a", "b", "c"]);
    assert_eq!(search(&mut h, &mut db, "(:clock (3001 t))").len(), 0);
    malformed(
        &mut h,
        "(search :id 9 :channel \"lobby\" :query (:clock 5))",
    );
}

#[test]
fn search_18_step3_numbers_compare_by_value() {
    let mut db = Db::new("number");
    let mut h = lobby_with(&mut db, &["first", "second"]);
    // The ids are 100 and 101; 101.0 is the same number.
    assert_eq!(search(&mut h, &mut db, "(:id 101)"), ["second"]);
    assert_eq!(search(&mut h, &mut db, "(:id 101.0)"), ["second"]);
    assert_eq!(search(&mut h, &mut db, "(:id 7)").len(), 0);
}

#[test]
fn search_18_step3_lists_match_when_every_element_appears() {
    let mut db = Db::new("list");
    let mut h = Harness::lobby();
    h.expect_ok(
        1,
        "(message :id 1 :channel \"lobby\" :text \"r1\" :reply-to (\"bob\" 7))",
    );
    h.expect_ok(
        1,
        "(message :id 2 :channel \"lobby\" :text \"r2\" :reply-to (\"cat\" 7))",
    );
    h.expect_ok(1, "(message :id 3 :channel \"lobby\" :text \"plain\")");
    db.sync(&mut h);
    h.take(2);
    assert_eq!(
        search(&mut h, &mut db, "(:reply-to (7 \"bob\"))"),
        ["r1"],
        "regardless of order"
    );
    assert_eq!(search(&mut h, &mut db, "(:reply-to (7))"), ["r1", "r2"]);
    assert_eq!(
        search(&mut h, &mut db, "(:reply-to (8))"),
        Vec::<String>::new()
    );
    malformed(
        &mut h,
        "(search :id 9 :channel \"lobby\" :query (:reply-to \"bob\"))",
    );
}

#[test]
fn search_18_step3_fields_no_stored_update_has_match_nothing() {
    let mut db = Db::new("unknown");
    let mut h = lobby_with(&mut db, &["x"]);
    assert_eq!(search(&mut h, &mut db, "(:payload (\"*\"))").len(), 0);
    assert_eq!(search(&mut h, &mut db, "(:no-such-field 1)").len(), 0);
}

#[test]
fn search_18_step3_a_query_that_is_not_initargs_is_malformed() {
    let mut db = Db::new("malformed");
    let mut h = lobby_with(&mut db, &["x"]);
    for q in ["(:text)", "(\"text\" (\"x\"))", "(:text (1 2))", "\"x\""] {
        malformed(
            &mut h,
            &format!("(search :id 9 :channel \"lobby\" :query {q})"),
        );
    }
    let long = "x".repeat(300);
    malformed(
        &mut h,
        &format!("(search :id 9 :channel \"lobby\" :query (:text (\"{long}\")))"),
    );
}

#[test]
fn search_18_step4_results_are_sorted_by_clock() {
    let mut db = Db::new("sorted");
    let mut h = Harness::lobby();
    for (clock, t) in [(3000, "late"), (1000, "early"), (2000, "middle")] {
        h.expect_ok(
            1,
            &format!("(message :id {clock} :clock {clock} :channel \"lobby\" :text \"{t}\")"),
        );
    }
    db.sync(&mut h);
    h.take(2);
    assert_eq!(search(&mut h, &mut db, "()"), ["early", "middle", "late"]);
}

#[test]
fn search_18_steps5_6_offset_and_pages_of_fifty() {
    let mut db = Db::new("pages");
    let mut h = Harness::with(Config {
        flood_limit: 1000,
        ..config()
    });
    h.login(1, "ann");
    h.login(2, "bob");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.expect_ok(2, "(join :id 3 :channel \"lobby\")");
    for i in 0..120 {
        h.expect_ok(
            1,
            &format!(
                "(message :id {i} :clock {} :channel \"lobby\" :text \"m{i}\")",
                1000 + i
            ),
        );
    }
    db.sync(&mut h);
    h.take(2);
    let page = search(&mut h, &mut db, "(:text (\"m*\"))");
    assert_eq!(page.len(), 50);
    assert_eq!(page[0], "m0");
    let got = ask(
        &mut h,
        &mut db,
        2,
        "(search :id 51 :channel \"lobby\" :offset 100 :query (:text (\"m*\")))",
    );
    let texts = result_texts(&got);
    assert_eq!(texts.len(), 20);
    assert_eq!(texts[0], "m100");
    assert_eq!(
        results(&got)[0].get(Known::KClock).and_then(Value::as_u64),
        Some(1100)
    );
    let got = ask(
        &mut h,
        &mut db,
        2,
        "(search :id 52 :channel \"lobby\" :offset 1000)",
    );
    assert_eq!(results(&got).len(), 0);
    assert_eq!(got.len(), 1, "an empty page is one reply");
}

#[test]
fn search_18_steps3_to_6_sparse_matches_past_the_first_rows_in_clock_order() {
    // More rows than a search tests before it asks the trigram index,
    // and than the index may name to be used, stored in the reverse of
    // their clock order; the index folds case
    // and keeps no positions, so "NEEDLE" and "eedle needl" are among
    // the rows it names, and the exact test drops them.
    let mut db = Db::new("sparse");
    let mut h = Harness::with(Config {
        flood_limit: u32::MAX,
        ..config()
    });
    h.login(1, "ann");
    h.login(2, "bob");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.expect_ok(2, "(join :id 3 :channel \"lobby\")");
    for i in 0..12_000u64 {
        let text = match i % 1000 {
            3 => format!("a needle {i}"),
            5 => format!("a NEEDLE {i}"),
            7 => format!("eedle needl {i}"),
            9 => format!("HAY {i}"),
            _ => format!("hay {i}"),
        };
        h.expect_ok(
            1,
            &format!(
                "(message :id {} :clock {} :channel \"lobby\" :text \"{text}\")",
                10 + i,
                100_000 - i
            ),
        );
        if i % 1000 == 999 {
            db.sync(&mut h);
            h.take(2);
        }
    }
    let got = ask(
        &mut h,
        &mut db,
        2,
        "(search :id 51 :channel \"lobby\" :offset 2 :query (:text (\"*needle*\")))",
    );
    let expected: Vec<String> = (0..10)
        .map(|k| format!("a needle {}", 9003 - 1000 * k))
        .collect();
    assert_eq!(result_texts(&got), expected);
    // The trigram index names most rows for "hay", the index of senders
    // only bob's two, at the end in clock order.
    for i in 0..2 {
        h.expect_ok(
            2,
            &format!(
                "(message :id {i} :clock {} :channel \"lobby\" :text \"hay {i}\")",
                200_000 + i
            ),
        );
    }
    assert_eq!(
        search(&mut h, &mut db, "(:from \"bob\" :text (\"*hay*\"))"),
        ["hay 0", "hay 1"]
    );
    // Both indexes name most rows: the walk in clock order goes on.
    let expected: Vec<String> = (0..12)
        .map(|k| format!("HAY {}", 11_009 - 1000 * k))
        .collect();
    assert_eq!(
        search(&mut h, &mut db, "(:from \"ann\" :text (\"*HAY*\"))"),
        expected
    );
    assert_eq!(
        search(&mut h, &mut db, "(:from \"ann\" :text (\"*NEEDLE*\"))").len(),
        12
    );
    assert_index_consistent(&db);
}

#[test]
fn a_schema_3_database_is_migrated_and_its_messages_found_by_text_18() {
    let mut db = Db::new("migrate");
    let mut h = lobby_with(&mut db, &["an old needle", "hay"]);
    let dir = db.dir.clone();
    db.store.take().expect("open").close();
    drop(db);
    // Schema 3's index: positions kept, triggers writing it; nothing of
    // the later schemas.
    rusqlite::Connection::open(dir.join(store::FILE_NAME))
        .unwrap()
        .execute_batch(
            "DROP TABLE links;
             DROP TABLE history_text;
             CREATE VIRTUAL TABLE history_text USING fts5(
                 text, content = 'history', content_rowid = 'id', tokenize = 'trigram');
             INSERT INTO history_text (history_text) VALUES ('rebuild');
             CREATE TRIGGER history_insert AFTER INSERT ON history WHEN new.text IS NOT NULL BEGIN
                 INSERT INTO history_text (rowid, text) VALUES (new.id, new.text);
             END;
             CREATE TRIGGER history_delete AFTER DELETE ON history WHEN old.text IS NOT NULL BEGIN
                 INSERT INTO history_text (history_text, rowid, text)
                     VALUES ('delete', old.id, old.text);
             END;
             CREATE TRIGGER history_update AFTER UPDATE OF text ON history BEGIN
                 SELECT 1;
             END;
             PRAGMA user_version = 3;",
        )
        .unwrap();
    let (mut db, _) = Db::open(dir);
    assert_eq!(
        search(&mut h, &mut db, "(:text (\"*needle*\"))"),
        ["an old needle"]
    );
    h.expect_ok(
        1,
        "(message :id 7 :channel \"lobby\" :text \"a new needle\")",
    );
    db.sync(&mut h);
    assert_eq!(
        search(&mut h, &mut db, "(:text (\"*needle*\"))"),
        ["an old needle", "a new needle"]
    );
    let conn = rusqlite::Connection::open(db.path().join(store::FILE_NAME)).unwrap();
    let (version, triggers): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version),
                    (SELECT count(*) FROM sqlite_master WHERE type = 'trigger')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((version, triggers), (store::SCHEMA_VERSION, 0));
    assert_index_consistent(&db);
}

#[test]
fn search_18_steps7_8_replies_are_split_to_fit_the_update_size() {
    let mut db = Db::new("split");
    let mut h = Harness::with(Config {
        max_update_size: 4096,
        ..config()
    });
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    let long = "y".repeat(1000);
    for i in 0..10 {
        h.expect_ok(
            1,
            &format!("(message :id {i} :channel \"lobby\" :text \"{long}\")"),
        );
    }
    db.sync(&mut h);
    h.take(1);
    let got = ask(
        &mut h,
        &mut db,
        1,
        "(search :id 60 :channel \"lobby\" :query (:text (\"y*\")))",
    );
    assert!(got.len() >= 3, "{} replies", got.len());
    for reply in &got {
        assert_eq!(class(reply), Known::SSearch);
        assert_eq!(id(reply), Some(60), "each reply is the search update");
        assert_eq!(text(reply, Known::KChannel), Some("lobby"));
        let mut printed = Vec::new();
        lichat_tcp_server::wire::print_update(reply, &mut printed).unwrap();
        assert!(printed.len() <= 4096, "{} bytes", printed.len());
    }
    assert_eq!(results(&got).len(), 10);
}

#[test]
fn search_18_results_carry_the_fields_first_sent() {
    let mut db = Db::new("fields");
    let mut h = Harness::lobby();
    h.expect_ok(
        1,
        "(message :id 5 :clock 4242 :channel \"lobby\" :text \"exact\" :reply-to (\"bob\" 1))",
    );
    let sent = h.take(2).pop().expect("bob got it");
    db.sync(&mut h);
    let found = results(&ask(
        &mut h,
        &mut db,
        2,
        "(search :id 9 :channel \"lobby\")",
    ));
    assert_eq!(found, vec![sent]);
}

#[test]
fn search_rule_nil_records_nothing_18() {
    let mut h = Harness::lobby();
    h.expect_ok(
        1,
        "(permissions :id 4 :channel \"lobby\" :permissions ((shirakumo:search nil)))",
    );
    h.expect_ok(1, "(message :id 5 :channel \"lobby\" :text \"secret\")");
    assert!(
        !h.take_changes()
            .iter()
            .any(|c| matches!(c, Change::History(_))),
        "not recorded"
    );
}

#[test]
fn data_is_recorded_without_its_payload_18() {
    let mut db = Db::new("data");
    let mut h = Harness::lobby();
    h.expect_ok(
        1,
        "(data :id 5 :channel \"lobby\" :content-type \"image/png\" :filename \"a.png\" :payload \"AAAA\")",
    );
    db.sync(&mut h);
    let found = results(&ask(
        &mut h,
        &mut db,
        2,
        "(search :id 9 :channel \"lobby\" :query (:filename (\"*.png\")))",
    ));
    assert_eq!(found.len(), 1);
    assert_eq!(class(&found[0]), Known::SData);
    assert_eq!(text(&found[0], Known::KContentType), Some("image/png"));
    assert!(found[0].get(Known::KPayload).is_none());
}

#[test]
fn edit_with_empty_text_by_the_sender_removes_the_stored_text_18() {
    let mut db = Db::new("redact");
    let mut h = lobby_with(&mut db, &["my password is hunter2", "keep me"]);
    h.expect_ok(1, "(edit :id 100 :channel \"lobby\" :text \"\")");
    db.sync(&mut h);
    assert_eq!(search(&mut h, &mut db, "(:text (\"*hunter2*\"))").len(), 0);
    let all = results(&ask(
        &mut h,
        &mut db,
        2,
        "(search :id 9 :channel \"lobby\")",
    ));
    // What is kept of the message: class, id, clock, from, channel.
    assert_eq!(all.len(), 3);
    assert_eq!(class(&all[0]), Known::Message);
    assert_eq!(id(&all[0]), Some(100));
    assert_eq!(text(&all[0], Known::KFrom), Some("ann"));
    assert_eq!(text(&all[0], Known::KText), Some(""));
    assert_eq!(text(&all[1], Known::KText), Some("keep me"));
    assert_eq!(class(&all[2]), Known::SEdit);
    assert_index_consistent(&db);
}

#[test]
fn expiry_deletes_a_channels_history_18() {
    let mut db = Db::new("expiry");
    let mut h = lobby_with(&mut db, &["old news"]);
    h.expect_ok(1, "(leave :id 8 :channel \"lobby\")");
    h.expect_ok(2, "(leave :id 9 :channel \"lobby\")");
    h.advance_to(START + lichat_tcp_server::engine::THIRTY_DAYS + 10);
    h.expire();
    assert!(h.engine.channel("lobby").is_none());
    db.sync(&mut h);
    // A channel made anew under the name starts without history.
    h.login(4, "dan");
    h.expect_ok(4, "(create :id 2 :channel \"lobby\")");
    db.sync(&mut h);
    let got = ask(&mut h, &mut db, 4, "(search :id 9 :channel \"lobby\")");
    assert_eq!(results(&got).len(), 0);
    let rows: i64 = rusqlite::Connection::open(db.path().join(store::FILE_NAME))
        .unwrap()
        .query_row("SELECT count(*) FROM history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    assert_index_consistent(&db);
}

#[test]
fn destroy_deletes_a_channels_history_18() {
    let mut db = Db::new("destroy");
    let mut h = Harness::with_admin();
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.expect_ok(1, "(message :id 3 :channel \"lobby\" :text \"x\")");
    db.sync(&mut h);
    h.expect_ok(9, "(destroy :id 4 :channel \"lobby\")");
    db.sync(&mut h);
    let rows: i64 = rusqlite::Connection::open(db.path().join(store::FILE_NAME))
        .unwrap()
        .query_row("SELECT count(*) FROM history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    assert_index_consistent(&db);
}

/// Registers `name` with a password on `conn`, commits.
fn register(h: &mut Harness, db: &mut Db, conn: usize, name: &str) {
    h.login(conn, name);
    h.expect_ok(conn, "(register :id 2 :password \"secret1\")");
    db.sync(h);
}

#[test]
fn history_and_backfill_survive_a_restart_1_18() {
    let mut db = Db::new("restart");
    let mut h = Harness::new();
    register(&mut h, &mut db, 1, "ann");
    register(&mut h, &mut db, 2, "bob");
    h.expect_ok(1, "(create :id 3 :channel \"lobby\")");
    h.expect_ok(2, "(join :id 4 :channel \"lobby\")");
    h.expect_ok(1, "(message :id 5 :channel \"lobby\" :text \"before\")");
    db.sync(&mut h);
    h.shutdown();
    db.sync(&mut h);

    let (mut db, snapshot) = db.restart();
    let mut h = restarted(snapshot);
    // ann comes back first and says something bob does not see.
    h.connect_with(1, "ann", "secret1");
    h.expect_ok(1, "(join :id 6 :channel \"lobby\")");
    h.expect_ok(
        1,
        "(message :id 7 :channel \"lobby\" :text \"while bob was away\")",
    );
    // A user without a profile gets nothing from before its join.
    h.login(3, "cat");
    h.expect_ok(3, "(join :id 8 :channel \"lobby\")");
    h.connect_with(2, "bob", "secret1");
    h.expect_ok(2, "(join :id 9 :channel \"lobby\")");
    h.expect_ok(1, "(message :id 10 :channel \"lobby\" :text \"after\")");
    db.sync(&mut h);
    h.take(2);
    h.take(3);

    let got = ask(&mut h, &mut db, 2, "(backfill :id 11 :channel \"lobby\")");
    let texts: Vec<&str> = got
        .iter()
        .filter(|o| class(o) == Known::Message)
        .filter_map(|o| text(o, Known::KText))
        .collect();
    assert_eq!(texts, ["before", "after"], "{got:?}");
    assert_eq!(class(got.last().unwrap()), Known::SBackfill);
    let got = ask(&mut h, &mut db, 3, "(backfill :id 12 :channel \"lobby\")");
    let texts: Vec<&str> = got
        .iter()
        .filter(|o| class(o) == Known::Message)
        .filter_map(|o| text(o, Known::KText))
        .collect();
    assert_eq!(texts, ["after"]);
    // And the history itself is searchable after the restart.
    let found = result_texts(&ask(
        &mut h,
        &mut db,
        2,
        "(search :id 13 :channel \"lobby\" :query (:text (\"*e*\")))",
    ));
    assert_eq!(found, ["before", "while bob was away", "after"]);

    // A second restart before bob comes back: still only what he saw.
    h.shutdown();
    db.sync(&mut h);
    let (mut db, snapshot) = db.restart();
    let mut h = restarted(snapshot);
    h.connect_with(1, "ann", "secret1");
    h.expect_ok(1, "(join :id 6 :channel \"lobby\")");
    h.expect_ok(1, "(message :id 7 :channel \"lobby\" :text \"unseen\")");
    db.sync(&mut h);
    h.shutdown();
    db.sync(&mut h);
    let (mut db, snapshot) = db.restart();
    let mut h = restarted(snapshot);
    h.connect_with(2, "bob", "secret1");
    h.expect_ok(2, "(join :id 9 :channel \"lobby\")");
    db.sync(&mut h);
    let got = ask(&mut h, &mut db, 2, "(backfill :id 11 :channel \"lobby\")");
    let texts: Vec<&str> = got
        .iter()
        .filter(|o| class(o) == Known::Message)
        .filter_map(|o| text(o, Known::KText))
        .collect();
    assert_eq!(texts, ["after"], "the latest gap drops what came before it");
}

#[test]
fn leaving_ends_the_membership_backfill_starts_at_the_new_join_1() {
    let mut db = Db::new("leave");
    let mut h = Harness::new();
    register(&mut h, &mut db, 1, "ann");
    register(&mut h, &mut db, 2, "bob");
    h.expect_ok(1, "(create :id 3 :channel \"lobby\")");
    h.expect_ok(2, "(join :id 4 :channel \"lobby\")");
    h.expect_ok(1, "(message :id 5 :channel \"lobby\" :text \"seen\")");
    h.expect_ok(2, "(leave :id 6 :channel \"lobby\")");
    h.expect_ok(1, "(message :id 7 :channel \"lobby\" :text \"unseen\")");
    h.expect_ok(2, "(join :id 8 :channel \"lobby\")");
    db.sync(&mut h);
    h.shutdown();
    db.sync(&mut h);
    let (mut db, snapshot) = db.restart();
    let mut h = restarted(snapshot);
    h.connect_with(2, "bob", "secret1");
    h.expect_ok(2, "(join :id 9 :channel \"lobby\")");
    db.sync(&mut h);
    let got = ask(&mut h, &mut db, 2, "(backfill :id 11 :channel \"lobby\")");
    assert!(
        got.iter().all(|o| class(o) != Known::Message),
        "neither the message before the leave nor the one while away: {got:?}"
    );
}

#[test]
fn backfill_past_the_recent_updates_comes_from_the_history_without_duplicates_1() {
    let mut db = Db::new("beyond");
    let mut h = Harness::with(Config {
        backfill_count: 5,
        ..config()
    });
    h.login(1, "ann");
    h.login(2, "bob");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.expect_ok(2, "(join :id 3 :channel \"lobby\")");
    for i in 0..20 {
        h.expect_ok(
            1,
            &format!("(message :id {} :channel \"lobby\" :text \"m{i}\")", 10 + i),
        );
    }
    db.sync(&mut h);
    h.take(2);
    let got = ask(&mut h, &mut db, 2, "(backfill :id 40 :channel \"lobby\")");
    let texts: Vec<String> = got
        .iter()
        .filter_map(|o| text(o, Known::KText).map(str::to_owned))
        .collect();
    let expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected);
}

#[test]
fn searches_per_connection_are_bounded_18() {
    let mut h = Harness::lobby();
    h.hold_searches = true;
    for i in 0..4 {
        h.send(2, &format!("(search :id {i} :channel \"lobby\")"));
    }
    assert!(h.take(2).is_empty());
    h.expect_failure(2, "(search :id 9 :channel \"lobby\")", Known::UpdateFailure);
    let job = h.held_searches.remove(0);
    h.search_done(lichat_tcp_server::engine::SearchDone::empty(&job));
    assert_eq!(h.classes(2), [Known::SSearch]);
    h.send(2, "(search :id 10 :channel \"lobby\")");
    assert!(h.take(2).is_empty(), "room again");
}

#[test]
fn a_result_for_a_connection_that_has_gone_is_dropped_18() {
    let mut h = Harness::lobby();
    h.hold_searches = true;
    h.send(2, "(search :id 1 :channel \"lobby\")");
    h.lost(2);
    h.login(2, "dan");
    let job = h.held_searches.remove(0);
    h.search_done(lichat_tcp_server::engine::SearchDone::empty(&job));
    assert!(h.take(2).is_empty());
}

#[test]
fn history_days_prunes_older_messages_18() {
    let mut db = Db::new("retention");
    let mut h = lobby_with(&mut db, &["old", "new"]);
    // Age the first message by two days.
    let conn = rusqlite::Connection::open(db.path().join(store::FILE_NAME)).unwrap();
    conn.execute(
        "UPDATE history SET stored = stored - 2 * 86400 WHERE text = 'old'",
        [],
    )
    .unwrap();
    db.store.as_ref().unwrap().set_history_days(1);
    h.expect_ok(1, "(message :id 7 :channel \"lobby\" :text \"newer\")");
    db.sync(&mut h);
    assert_eq!(search(&mut h, &mut db, "()"), ["new", "newer"]);
    assert_index_consistent(&db);
}
