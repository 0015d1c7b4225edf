use lichat_tcp_server::wire::*;

#[test]
fn message_update_round_trips_1() {
    let text = b"(message :id 7 :clock 3900000000 :from \"ann\" :channel \"lobby\" :text \"hi\")";
    let obj = read_object(text).unwrap();
    assert_eq!(obj.class, Symbol::Known(Known::Message));
    let printed = update_to_vec(&obj).unwrap();
    assert_eq!(&printed[..printed.len() - 1], &text[..]);
    let mut got = Vec::new();
    let mut r = Reader::new(1000);
    for b in printed.iter().chain(printed.iter()) {
        r.feed(std::slice::from_ref(b), |u| got.push(u));
    }
    assert_eq!(got, vec![Ok(obj.clone()), Ok(obj)]);
}
