//! shirakumo-data (§2 of shirakumo.mess): `data` updates and the
//! `bad-content-type` failure.
mod engine_support;
use engine_support::*;
use lichat_tcp_server::engine::Config;
use lichat_tcp_server::wire::Known;

const PNG: &str = "iVBORw0KGgo=";

fn data(id: u64, ty: &str, payload: &str) -> String {
    format!(
        "(data :id {id} :channel \"lobby\" :content-type \"{ty}\" :filename \"a.png\" \
         :payload \"{payload}\")"
    )
}

#[test]
fn data_2_is_advertised_as_shirakumo_data_4_1_11() {
    let mut h = Harness::new();
    h.open(1);
    let got = h.call(1, "(connect :id 1 :from \"ann\" :version \"2.0\")");
    assert!(strings(&got[0], Known::KExtensions).contains(&"shirakumo-data".to_owned()));
}

#[test]
fn data_2_step3_is_distributed_to_the_channel_with_its_fields() {
    let mut h = Harness::lobby();
    let mine = h.expect_ok(1, &data(5, "image/png", PNG));
    let theirs = h.take(2);
    for got in [&mine, &theirs] {
        assert_eq!(classes_of(got), [Known::SData]);
        let d = &got[0];
        assert_eq!(text(d, Known::KFrom), Some("ann"));
        assert_eq!(text(d, Known::KContentType), Some("image/png"));
        assert_eq!(text(d, Known::KFilename), Some("a.png"));
        assert_eq!(text(d, Known::KPayload), Some(PNG));
        assert_eq!(id(d), Some(5));
    }
    assert!(h.take(3).is_empty(), "cat is not in lobby");
    // The filename is optional.
    let got = h.expect_ok(
        1,
        "(data :id 6 :channel \"lobby\" :content-type \"text/plain\" :payload \"eA==\")",
    );
    assert_eq!(classes_of(&got), [Known::SData]);
}

#[test]
fn data_2_step1_outsider_gets_not_in_channel() {
    let mut h = Harness::lobby();
    h.expect_failure(3, &data(5, "image/png", PNG), Known::NotInChannel);
    assert!(h.take(1).is_empty() && h.take(2).is_empty());
}

#[test]
fn data_2_step2_unaccepted_type_gets_bad_content_type_listing_the_accepted() {
    let mut h = Harness::lobby();
    let f = h.expect_failure(
        1,
        &data(5, "application/x-msdownload", PNG),
        Known::SBadContentType,
    );
    let allowed = strings(&f, Known::KAllowedContentTypes);
    assert!(allowed.contains(&"image/png".to_owned()), "{allowed:?}");
    assert!(
        allowed.contains(&"application/pdf".to_owned()),
        "{allowed:?}"
    );
    assert_eq!(allowed.len(), 11);
    let t = text(&f, Known::KText).unwrap();
    assert!(t.contains("image/png") && t.contains("video/webm"), "{t}");
    assert!(h.take(2).is_empty(), "nothing distributed");
}

#[test]
fn data_2_step2_content_types_compare_without_case_or_parameters() {
    let mut h = Harness::lobby();
    h.expect_ok(1, &data(5, "Image/PNG", PNG));
    h.expect_ok(1, &data(6, "text/plain; charset=utf-8", "eA=="));
    assert_eq!(h.take(2).len(), 2);
}

#[test]
fn data_2_step2_accepted_types_come_from_the_config() {
    let mut h = Harness::with(Config {
        data_types: vec!["image/png".into()],
        ..config()
    });
    h.login(1, "ann");
    h.expect_ok(1, "(create :id 2 :channel \"lobby\")");
    h.expect_ok(1, &data(3, "image/png", PNG));
    let f = h.expect_failure(1, &data(4, "image/gif", PNG), Known::SBadContentType);
    assert_eq!(strings(&f, Known::KAllowedContentTypes), ["image/png"]);
}

#[test]
fn data_2_payload_must_be_base64_else_malformed_update() {
    let mut h = Harness::lobby();
    for bad in ["not base64!", "iVBORw0KGgo", "iVBO Rw0K"] {
        let got = h.call(1, &data(5, "image/png", bad));
        assert_eq!(classes_of(&got), [Known::MalformedUpdate], "{bad:?}");
    }
    let got = h.call(
        1,
        "(data :id 6 :channel \"lobby\" :content-type \"image/png\")",
    );
    assert_eq!(
        classes_of(&got),
        [Known::MalformedUpdate],
        "payload missing"
    );
    assert!(h.take(2).is_empty());
}

#[test]
fn data_2_default_rules_are_those_of_message_2_5() {
    let mut h = Harness::lobby();
    // In the primary channel only its registrant, the server, may.
    h.expect_failure(
        1,
        &format!("(data :id 5 :channel \"Server\" :content-type \"image/png\" :payload \"{PNG}\")"),
        Known::InsufficientPermissions,
    );
    // Anyone in a regular channel (bob is not its registrant) ...
    h.expect_ok(2, &data(6, "image/png", PNG));
    // ... and in an anonymous one.
    let got = h.expect_ok(1, "(create :id 7)");
    let anon = text(&got[0], Known::KChannel).unwrap().to_owned();
    h.expect_ok(
        1,
        &format!("(data :id 8 :channel \"{anon}\" :content-type \"image/png\" :payload \"{PNG}\")"),
    );
}
