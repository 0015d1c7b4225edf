//! The durable store: what the engine confirmed survives a restart.

mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::{Change, Engine, Outbox};
use lichat_tcp_server::store::{self, FILE_NAME, NoNotify};
use lichat_tcp_server::wire::Known;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lichat-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs the harness's pending changes through a store in `dir`.
fn persist(dir: &Path, changes: Vec<Change>) {
    let (mut store, _) = store::open(dir, Arc::new(NoNotify)).expect("store opens");
    store.submit(changes);
    store.close();
}

fn restarted_engine(dir: &Path) -> Harness {
    let (store, snapshot) = store::open(dir, Arc::new(NoNotify)).expect("store reopens");
    store.close();
    let mut h = Harness::new();
    h.engine.load(snapshot);
    h
}

#[test]
fn registered_profile_survives_restart_and_password_logs_in_5_2() {
    let dir = temp_dir("profile");
    let mut h = Harness::new();
    h.login(1, "ann");
    let got = h.call(1, "(register :id 5 :password \"secret1\")");
    assert_eq!(class(&got[0]), Known::Register);
    persist(&dir, h.take_changes());

    let mut h = restarted_engine(&dir);
    h.open(2);
    let got = h.call(
        2,
        "(connect :id 1 :from \"ann\" :password \"wrong-one\" :version \"2.0\")",
    );
    assert_eq!(class(&got[0]), Known::InvalidPassword);
    h.open(3);
    let got = h.call(
        3,
        "(connect :id 1 :from \"ANN\" :password \"secret1\" :version \"2.0\")",
    );
    assert_eq!(class(&got[0]), Known::Connect);
    assert_eq!(text(&got[0], Known::KFrom), Some("ann"));
    h.open(4);
    let got = h.call(4, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    assert_eq!(
        class(&got[0]),
        Known::UsernameTaken,
        "the name stays reserved"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn channel_permissions_survive_restart_5_3_2() {
    let dir = temp_dir("channel");
    let mut h = Harness::new();
    h.login(1, "ann");
    h.login(2, "bob");
    h.call(1, "(create :id 2 :channel \"lobby\")");
    h.call(
        1,
        "(deny :id 3 :channel \"lobby\" :target \"bob\" :update join)",
    );
    h.call(
        1,
        "(permissions :id 4 :channel \"lobby\" :permissions ((message (+ \"ann\" \"cy\"))))",
    );
    persist(&dir, h.take_changes());

    let mut h = restarted_engine(&dir);
    let lobby = h.engine.channel("LOBBY").expect("channel restored");
    assert_eq!(lobby.registrant, "ann");
    h.login(1, "bob");
    let got = h.call(1, "(join :id 2 :channel \"lobby\")");
    assert_eq!(class(&got[0]), Known::InsufficientPermissions);
    h.login(2, "cy");
    let got = h.call(2, "(join :id 2 :channel \"lobby\")");
    assert_eq!(class(&got[0]), Known::Join);
    let got = h.call(2, "(message :id 3 :channel \"lobby\" :text \"hi\")");
    assert_eq!(class(&got[0]), Known::Message, "(+ ann cy) restored");
    h.login(3, "dee");
    h.call(3, "(join :id 2 :channel \"lobby\")");
    let got = h.call(3, "(message :id 3 :channel \"lobby\" :text \"hi\")");
    assert_eq!(class(&got[0]), Known::InsufficientPermissions);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn expired_profile_and_channel_leave_the_database_2_3() {
    let dir = temp_dir("expiry");
    let mut h = Harness::new();
    h.login(1, "ann");
    h.call(1, "(register :id 2 :password \"secret1\")");
    h.call(1, "(create :id 3 :channel \"old\")");
    h.call(1, "(disconnect :id 4)");
    persist(&dir, h.take_changes());
    h.now += 31 * 24 * 3600;
    h.expire();
    let changes = h.take_changes();
    assert!(changes.contains(&Change::DeleteProfile("ann".into())));
    assert!(changes.contains(&Change::DeleteChannel("old".into())));
    persist(&dir, changes);
    let snapshot = store::read_snapshot(&dir).expect("readable");
    assert!(snapshot.profiles.is_empty() && snapshot.channels.is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn anonymous_channels_are_not_stored_2_4_2() {
    let mut h = Harness::new();
    h.login(1, "ann");
    h.take_changes();
    let got = h.call(1, "(create :id 2)");
    assert_eq!(class(&got[0]), Known::Join);
    assert!(h.take_changes().is_empty());
}

#[test]
fn damaged_database_refuses_to_start_naming_the_file() {
    let dir = temp_dir("damaged");
    std::fs::write(dir.join(FILE_NAME), vec![0x5a; 8192]).expect("write junk");
    let err = store::open(&dir, Arc::new(NoNotify))
        .err()
        .expect("must refuse");
    let text = err.to_string();
    assert!(text.contains(FILE_NAME), "{text}");
    assert!(text.contains("not a database"), "{text}");
    // Nothing was discarded: the file is as it was.
    assert_eq!(
        std::fs::read(dir.join(FILE_NAME)).unwrap(),
        vec![0x5a; 8192]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn newer_schema_version_refuses_to_start() {
    let dir = temp_dir("newer");
    persist(&dir, Vec::new());
    {
        let conn = rusqlite::Connection::open(dir.join(FILE_NAME)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = store::open(&dir, Arc::new(NoNotify))
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("newer"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn group_of_registrations_commits_under_one_ticket() {
    let dir = temp_dir("group");
    let mut engine = Engine::new(config(), START);
    let mut out = Outbox::default();
    let ip = "127.0.0.1".parse().unwrap();
    for conn in 0..100 {
        engine.open(conn, ip, START);
        let c = format!("(connect :id 1 :from \"user{conn}\" :version \"2.0\")");
        engine.handle(
            conn,
            lichat_tcp_server::wire::read_object(c.as_bytes()),
            START,
            &mut out,
        );
        let r = lichat_tcp_server::wire::read_object(b"(register :id 2 :password \"secret1\")");
        engine.handle(conn, r, START, &mut out);
        engine.complete_jobs(START, &mut out);
    }
    let (mut store, _) = store::open(&dir, Arc::new(NoNotify)).unwrap();
    let ticket = store.submit(std::mem::take(&mut out.changes));
    assert_eq!(ticket, 1);
    store.close();
    let snapshot = store::read_snapshot(&dir).unwrap();
    assert_eq!(snapshot.profiles.len(), 100);
    let _ = std::fs::remove_dir_all(dir);
}

/// Wakes the test when the writer has committed or started failing.
struct Wake(std::sync::mpsc::Sender<()>);

impl store::Notify for Wake {
    fn notify(&self) {
        let _ = self.0.send(());
    }
}

#[test]
fn while_commits_fail_the_writer_keeps_one_record_per_name_and_saves_them_later() {
    use lichat_tcp_server::engine::{ChannelRecord, Password, Profile};
    use std::time::Duration;
    let dir = temp_dir("failing");
    let faults = dir.join("faults");
    std::fs::write(&faults, "").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (mut store, _) =
        store::open_with_faults(&dir, Arc::new(Wake(tx)), Some(&faults)).expect("store opens");
    std::fs::write(&faults, "full").unwrap();
    let profile = |last_used| {
        Change::Profile(Profile {
            name: "ann".into(),
            password: Password {
                salt: [1; 16],
                iterations: 1,
                hash: [2; 32],
            },
            registered_on: 1,
            last_used,
            data: Default::default(),
        })
    };
    let channel = |name: &str, last_used| {
        Change::Channel(ChannelRecord {
            name: name.into(),
            registrant: "ann".into(),
            rules: Vec::new(),
            lifetime: 60,
            last_used,
            data: Default::default(),
        })
    };
    store.submit(vec![profile(0)]);
    rx.recv_timeout(Duration::from_secs(5))
        .expect("woken by the failure");
    assert!(store.failing_for().is_some());
    assert_eq!(store.failure().as_deref(), Some(store::DISK_FULL));
    let mut last = 0;
    for t in 1..=2000 {
        last = store.submit(vec![
            profile(t),
            channel("den", t),
            channel("gone", t),
            Change::DeleteChannel("gone".into()),
        ]);
        // One record per name: the profile, each channel, and the clearing
        // of the deleted channel's shared files (§12), whatever the count
        // of submits.
        assert!(store.waiting() <= 4, "{} records waiting", store.waiting());
    }
    assert_eq!(store.committed(), 0);
    // The disk takes commits again: everything is saved, latest first.
    std::fs::write(&faults, "").unwrap();
    while store.committed() < last {
        rx.recv_timeout(Duration::from_secs(5))
            .expect("woken by the commit");
    }
    assert_eq!(store.failure(), None);
    assert_eq!(store.waiting(), 0);
    store.close();
    let snapshot = store::read_snapshot(&dir).expect("readable");
    assert_eq!(snapshot.profiles.len(), 1);
    assert_eq!(snapshot.profiles[0].last_used, 2000);
    let names: Vec<_> = snapshot
        .channels
        .iter()
        .map(|c| (c.name.as_str(), c.last_used))
        .collect();
    assert_eq!(names, [("den", 2000)]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn closing_while_commits_fail_gives_up_after_one_last_attempt() {
    let dir = temp_dir("close-failing");
    let faults = dir.join("faults");
    std::fs::write(&faults, "").unwrap();
    let (mut store, _) =
        store::open_with_faults(&dir, Arc::new(NoNotify), Some(&faults)).expect("store opens");
    std::fs::write(&faults, "full").unwrap();
    store.submit(vec![Change::DeleteProfile("ann".into())]);
    assert!(store.close_within(std::time::Duration::from_secs(1)));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn extension_data_of_channels_and_profiles_survives_restart_without_a_migration_2_3_2_4() {
    use lichat_tcp_server::engine::{ChannelRecord, ExtData, Password, Profile};
    use lichat_tcp_server::wire::Value;
    let dir = temp_dir("ext-data");
    let mut data = ExtData::default();
    data.set("shirakumo-quiet", Value::List(vec![Value::string("bob")]));
    data.set("shirakumo-pause", Value::int(30));
    data.set("shirakumo-gone", Value::int(1));
    data.set("shirakumo-gone", Value::NIL);
    persist(
        &dir,
        vec![
            Change::Profile(Profile {
                name: "ann".into(),
                password: Password {
                    salt: [1; 16],
                    iterations: 1,
                    hash: [2; 32],
                },
                registered_on: 1,
                last_used: 2,
                data: data.clone(),
            }),
            Change::Channel(ChannelRecord {
                name: "den".into(),
                registrant: "ann".into(),
                rules: Vec::new(),
                lifetime: 60,
                last_used: 3,
                data: data.clone(),
            }),
        ],
    );
    let snapshot = store::read_snapshot(&dir).expect("readable");
    assert_eq!(snapshot.profiles[0].data, data);
    assert_eq!(snapshot.channels[0].data, data);
    assert_eq!(data.get("shirakumo-pause"), Some(&Value::int(30)));
    assert_eq!(data.get("shirakumo-gone"), None);
    // The engine keeps it, and writes it back with the channel's changes.
    let mut h = restarted_engine(&dir);
    assert_eq!(h.engine.channel("den").unwrap().data, data);
    h.login(1, "bob");
    h.expect_ok(1, "(join :id 2 :channel \"den\")");
    // Its last member going writes the channel (its last use) again.
    h.send(1, "(disconnect :id 3)");
    let written = h.take_changes().into_iter().find_map(|c| match c {
        Change::Channel(c) if c.name == "den" => Some(c),
        _ => None,
    });
    assert_eq!(written.expect("den was written").data, data);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn quiet_list_and_pause_survive_a_restart_shirakumo_8_9() {
    let dir = temp_dir("quiet-pause");
    let mut h = Harness::lobby();
    h.expect_ok(1, "(quiet :id 5 :channel \"lobby\" :target \"cat\")");
    h.expect_ok(1, "(pause :id 6 :channel \"lobby\" :by 30)");
    persist(&dir, h.take_changes());

    let mut h = restarted_engine(&dir);
    h.login(1, "ann");
    h.login(3, "cat");
    h.expect_ok(1, "(join :id 2 :channel \"lobby\")");
    let got = h.expect_ok(3, "(join :id 3 :channel \"lobby\")");
    assert_eq!(classes_of(&got), [Known::Join, Known::SPause]);
    h.take(1);
    h.expect_ok(3, "(message :id 4 :channel \"lobby\" :text \"hi\")");
    assert!(h.take(1).is_empty(), "cat is still quiet");
}

#[test]
fn block_list_and_last_read_survive_a_restart_shirakumo_19_22() {
    let dir = temp_dir("block-last-read");
    let mut h = Harness::lobby();
    h.expect_ok(1, "(register :id 3 :password \"secret1\")");
    h.expect_ok(1, "(block :id 4 :target \"bob\")");
    h.expect_ok(
        1,
        "(last-read :id 5 :channel \"lobby\" :target \"bob\" :update-id 42)",
    );
    persist(&dir, h.take_changes());

    let mut h = restarted_engine(&dir);
    let got = h.connect_with(1, "ann", "secret1");
    assert_eq!(class(&got[0]), Known::Connect);
    let got = h.expect_ok(1, "(blocked :id 2)");
    assert_eq!(strings(&got[0], Known::KTarget), ["bob"]);
    h.expect_ok(1, "(join :id 3 :channel \"lobby\")");
    let got = h.expect_ok(1, "(last-read :id 4 :channel \"lobby\")");
    assert_eq!(update_id(&got[0]), Some(42));
}

#[test]
fn blacklists_survive_a_restart_and_unban_is_stored_shirakumo_7_10() {
    let dir = temp_dir("blacklist");
    let mut config = config();
    config.admins = vec!["root".into()];
    let mut h = Harness::with(config);
    h.login(8, "root");
    h.expect_ok(8, "(register :id 2 :password \"rootpass\")");
    h.connect_with(9, "root", "rootpass");
    h.expect_ok(9, "(ban :id 3 :target \"bob\")");
    h.expect_ok(9, "(ban :id 4 :target \"cat\")");
    h.expect_ok(9, "(unban :id 5 :target \"cat\")");
    h.expect_ok(9, "(ip-ban :id 6 :ip \"198.51.100.0\" :mask \"0.0.0.255\")");
    persist(&dir, h.take_changes());

    let mut h = restarted_engine(&dir);
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"bob\" :version \"2.0\")");
    assert_eq!(classes_of(&got), [Known::TooManyConnections]);
    h.login(2, "cat");
    // shirakumo.mess §10: the IP blacklist is stored as well.
    assert!(h.engine.address_banned("198.51.100.7".parse().unwrap()));
    assert!(!h.engine.address_banned("198.51.101.7".parse().unwrap()));
}

#[test]
fn unchanged_extension_data_is_not_rewritten_with_its_row_2_3() {
    use lichat_tcp_server::engine::{ExtData, Password, Profile};
    use lichat_tcp_server::wire::Value;
    let dir = temp_dir("same-data");
    let (tx, rx) = std::sync::mpsc::channel();
    let (mut store, _) = store::open(&dir, Arc::new(Wake(tx))).expect("store opens");
    let mut data = ExtData::default();
    data.set("shirakumo-icons", Value::string("image/png AAAA"));
    let profile = |last_used, data: &ExtData| {
        Change::Profile(Profile {
            name: "ann".into(),
            password: Password {
                salt: [1; 16],
                iterations: 1,
                hash: [2; 32],
            },
            registered_on: 1,
            last_used,
            data: data.clone(),
        })
    };
    let mut commit = |changes| {
        let ticket = store.submit(changes);
        while store.committed() < ticket {
            rx.recv().expect("the writer wakes us");
        }
    };
    commit(vec![profile(2, &data)]);
    // Mark the column from outside: a rewrite would overwrite the mark.
    let db = rusqlite::Connection::open(dir.join(FILE_NAME)).unwrap();
    db.execute("UPDATE profiles SET data = '((\"mark\" 1))'", [])
        .unwrap();
    // A login changes the row, not its data (the very same values).
    commit(vec![profile(3, &data)]);
    let snapshot = store::read_snapshot(&dir).unwrap();
    assert_eq!(snapshot.profiles[0].last_used, 3);
    assert_eq!(
        snapshot.profiles[0].data.get("mark"),
        Some(&Value::int(1)),
        "the data column was left alone"
    );
    // Data set anew is written, even when equal to the old.
    data.set("shirakumo-icons", Value::string("image/png AAAA"));
    commit(vec![profile(4, &data)]);
    let snapshot = store::read_snapshot(&dir).unwrap();
    assert_eq!(snapshot.profiles[0].data, data);
    store.close();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn roles_otp_key_and_shared_identities_survive_a_restart_shirakumo_15_24_26() {
    use lichat_tcp_server::engine::{UNIX_TO_UNIVERSAL, base32_decode, totp};
    let dir = temp_dir("roles-otp-identity");
    let key = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let mut h = Harness::lobby();
    h.expect_ok(
        1,
        &format!("(register :id 3 :password \"secret1\" :otp-key \"{key}\")"),
    );
    h.expect_ok(2, "(register :id 4 :password \"secret2\")");
    h.expect_ok(
        1,
        "(role :id 5 :channel \"lobby\" :role \"muted\" :permissions ((message NIL) (shirakumo:set-channel-info T)))",
    );
    h.expect_ok(
        1,
        "(assign-role :id 6 :channel \"lobby\" :role \"muted\" :target \"bob\")",
    );
    let got = h.expect_ok(1, "(share-identity :id 7)");
    let share = text(&got[0], Known::KKey).unwrap().to_owned();
    h.expect_ok(
        2,
        &format!("(assume-identity :id 8 :target \"ann\" :key \"{share}\")"),
    );
    persist(&dir, h.take_changes());

    let mut h = restarted_engine(&dir);
    let got = h.connect_with(1, "ann", "secret1");
    assert_eq!(classes_of(&got), [Known::InvalidPassword], "the key stayed");
    h.open(5);
    let code = totp(&base32_decode(key).unwrap(), h.now - UNIX_TO_UNIVERSAL, 6);
    let got = h.call(
        5,
        &format!(
            "(connect :id 1 :from \"ann\" :password \"secret1\" :version \"2.0\" :otp-token \"{code:06}\")"
        ),
    );
    assert_eq!(class(&got[0]), Known::Connect);
    let got = h.connect_with(2, "bob", "secret2");
    assert_eq!(class(&got[0]), Known::Connect);
    h.expect_ok(5, "(join :id 2 :channel \"lobby\")");
    h.expect_ok(2, "(join :id 3 :channel \"lobby\")");
    h.take(5);
    h.take(2);
    let got = h.expect_ok(5, "(role :id 4 :channel \"lobby\" :role \"muted\")");
    let entries = got[0]
        .get(Known::KPermissions)
        .and_then(|v| v.as_list())
        .unwrap()
        .len();
    assert_eq!(entries, 2);
    h.expect_failure(
        2,
        "(message :id 5 :channel \"lobby\" :text \"hi\")",
        Known::InsufficientPermissions,
    );
    h.expect_ok(
        2,
        "(set-channel-info :id 6 :channel \"lobby\" :key :topic :text \"by role\")",
    );
    let got = h.expect_ok(2, "(list-shared-identities :id 7)");
    assert_eq!(strings(&got[0], Known::KIdentities), ["ann"]);
}
