//! shirakumo-backfill (§1 of `shirakumo.mess`) over real TCP: what a busy
//! channel keeps is bounded by its byte cap.

mod common;

use common::{class, int, start, text};

/// Messages sent per batch before the senders' echoes are read, so that
/// no write queue fills up.
const BATCH: usize = 500;

#[test]
fn ten_thousand_messages_leave_the_backfill_at_its_byte_cap_1() {
    const CAP: usize = 64 * 1024;
    const MESSAGES: usize = 10_000;
    let server = start(&[
        "--backfill-count",
        "1000000",
        "--backfill-bytes",
        &CAP.to_string(),
        "--flood-limit",
        "1000000",
    ]);
    let mut ann = server.login("ann");
    let mut bob = server.login("bob");
    ann.update("create", ":channel \"lobby\"");
    ann.recv_in("join", "lobby");
    bob.update("join", ":channel \"lobby\"");
    bob.recv_in("join", "lobby");
    ann.recv_in("join", "lobby");

    let mut last_id = 0;
    let mut largest = 0;
    for batch in 0..MESSAGES / BATCH {
        for i in 0..BATCH {
            last_id = ann.message(
                "lobby",
                &format!("message {} of a busy day", batch * BATCH + i),
            );
        }
        for _ in 0..BATCH {
            let m = ann.recv_class("message");
            largest = largest.max(ann.last_size);
            assert_eq!(text(&m, "channel"), Some("lobby"));
        }
        for _ in 0..BATCH {
            bob.recv_class("message");
        }
    }

    let backfill = bob.update("backfill", ":channel \"lobby\"");
    let mut kept = 0;
    let mut count = 0;
    let mut last = None;
    loop {
        let u = bob.recv();
        if class(&u) == "backfill" && int(&u, "id") == Some(backfill) {
            break;
        }
        assert_eq!(class(&u), "message", "{u:?}");
        kept += bob.last_size;
        count += 1;
        last = int(&u, "id");
    }
    println!("backfill after {MESSAGES} messages: {count} updates, {kept} bytes (cap {CAP})");
    assert!(kept <= CAP, "{kept} bytes kept, over the cap of {CAP}");
    assert!(
        kept > CAP - largest,
        "{kept} bytes kept: the cap of {CAP} was not filled"
    );
    assert!(count < MESSAGES, "{count} updates kept");
    assert_eq!(last, Some(last_id), "the newest message is kept last");
}
