mod engine_support;
use engine_support::*;
use lichat_tcp_server::wire::Known;

#[test]
fn connect_create_join_message_flow_4_1_5_4() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(
        1,
        "(connect :id 1 :from \"ann\" :version \"2.0\" :extensions ())",
    );
    let cls: Vec<_> = got.iter().map(class).collect();
    assert_eq!(
        cls,
        [Known::Connect, Known::Join, Known::Message],
        "{got:?}"
    );
    h.login(2, "bob");
    assert_eq!(
        h.classes(1),
        [Known::Join],
        "bob arrives in the primary channel"
    );
    let got = h.call(1, "(create :id 2 :channel \"lobby\")");
    assert_eq!(got.iter().map(class).collect::<Vec<_>>(), [Known::Join]);
    assert_eq!(id(&got[0]), Some(2));
    let got = h.call(2, "(join :id 3 :channel \"LOBBY\")");
    assert_eq!(got.iter().map(class).collect::<Vec<_>>(), [Known::Join]);
    assert_eq!(text(&got[0], Known::KChannel), Some("lobby"));
    assert_eq!(h.classes(1), [Known::Join]);
    h.send(1, "(message :id 4 :channel \"lobby\" :text \"hi\")");
    let b = h.take(2);
    assert_eq!(b.len(), 1);
    assert_eq!(text(&b[0], Known::KFrom), Some("ann"));
    assert_eq!(text(&b[0], Known::KText), Some("hi"));
    assert_eq!(h.classes(1), [Known::Message]);
}
