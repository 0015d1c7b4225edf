//! The store's side of shirakumo-link (`shirakumo.mess` §12): payload files
//! and their rows are written by the commit, removed with their channel,
//! and tidied at start-up.

use lichat_tcp_server::engine::{Change, ChannelRecord, LinkRecord};
use lichat_tcp_server::store::links::open_payload;
use lichat_tcp_server::store::{self, NoNotify};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lichat-links-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Commits `changes` and closes the store; returns what it had loaded.
fn commit(dir: &Path, changes: Vec<Change>) -> Vec<(String, u64)> {
    let (mut store, snapshot) = store::open(dir, Arc::new(NoNotify)).expect("store opens");
    store.submit(changes);
    store.close();
    snapshot.links
}

fn loaded(dir: &Path) -> Vec<(String, u64)> {
    commit(dir, Vec::new())
}

fn link(name: char, channel: &str, durable: bool, payload: &[u8]) -> Change {
    Change::Link(Box::new(LinkRecord {
        name: name.to_string().repeat(32),
        channel: channel.into(),
        durable,
        content_type: "image/png".into(),
        filename: Some("cat picture.png".into()),
        payload: payload.to_vec(),
        created: 3_900_000_000,
    }))
}

fn channel(name: &str) -> Change {
    Change::Channel(ChannelRecord {
        name: name.into(),
        registrant: "ann".into(),
        rules: Vec::new(),
        lifetime: 3600,
        last_used: 3_900_000_000,
        data: Default::default(),
    })
}

fn read(dir: &Path, name: char) -> Option<(String, Option<String>, Vec<u8>)> {
    let p = open_payload(dir, &name.to_string().repeat(32)).expect("readable")?;
    let mut body = Vec::new();
    let mut file = p.file;
    file.read_to_end(&mut body).expect("the payload");
    assert_eq!(body.len() as u64, p.size);
    Some((p.content_type, p.filename, body))
}

#[test]
fn a_committed_payload_is_served_from_its_file_and_counted_after_restart_12() {
    let dir = temp_dir("kept");
    commit(
        &dir,
        vec![channel("den"), link('a', "den", true, &[7u8; 5000])],
    );
    let (ty, filename, body) = read(&dir, 'a').expect("the payload");
    assert_eq!(ty, "image/png");
    assert_eq!(filename.as_deref(), Some("cat picture.png"));
    assert_eq!(body, vec![7u8; 5000]);
    assert_eq!(loaded(&dir), [("den".to_owned(), 8192)]);
    assert!(read(&dir, 'b').is_none());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_deleted_channel_takes_its_payloads_and_a_new_one_of_its_name_keeps_its_own_12() {
    let dir = temp_dir("channel");
    commit(
        &dir,
        vec![
            channel("den"),
            link('a', "den", true, b"old"),
            link('b', "lair", true, b"other"),
        ],
    );
    // Deleted and made anew in the same batch: only what came after stays.
    commit(
        &dir,
        vec![
            link('c', "Den", true, b"before"),
            Change::DeleteChannel("DEN".into()),
            channel("den"),
            link('d', "den", true, b"new"),
        ],
    );
    assert!(read(&dir, 'a').is_none());
    assert!(read(&dir, 'c').is_none());
    assert_eq!(read(&dir, 'd').map(|p| p.2), Some(b"new".to_vec()));
    assert_eq!(read(&dir, 'b').map(|p| p.2), Some(b"other".to_vec()));
    commit(&dir, vec![Change::DeleteLinks("lair".into())]);
    assert!(read(&dir, 'b').is_none());
    let files = std::fs::read_dir(dir.join("links")).expect("dir").count();
    assert_eq!(files, 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_withdrawn_payload_goes_whether_or_not_it_was_committed_12() {
    let dir = temp_dir("withdrawn");
    commit(&dir, vec![link('a', "den", true, b"kept a while")]);
    commit(
        &dir,
        vec![
            link('b', "den", true, b"never confirmed"),
            Change::DeleteLink("b".repeat(32)),
            Change::DeleteLink("a".repeat(32)),
        ],
    );
    assert!(read(&dir, 'a').is_none());
    assert!(read(&dir, 'b').is_none());
    assert!(loaded(&dir).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn start_up_removes_anonymous_payloads_and_files_without_a_row_12() {
    let dir = temp_dir("tidy");
    commit(
        &dir,
        vec![
            link('a', "@anon", false, b"gone at restart"),
            link('b', "den", true, b"kept"),
        ],
    );
    // What a crash between writing a file and its commit leaves.
    let links = dir.join("links");
    std::fs::write(links.join("c".repeat(32)), b"LICHATL1").expect("write");
    std::fs::write(links.join(format!("{}.tmp", "d".repeat(32))), b"half").expect("write");
    std::fs::write(links.join("README"), b"not ours").expect("write");
    assert_eq!(loaded(&dir), [("den".to_owned(), 4096)]);
    let mut left: Vec<String> = std::fs::read_dir(&links)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["README".to_owned(), "b".repeat(32)]);
    let _ = std::fs::remove_dir_all(dir);
}
