//! §1 property: any printable value printed and read back is equal, and any
//! update survives the incremental reader in any split.

use lichat_tcp_server::wire::*;
use proptest::prelude::*;

/// A symbol or package name: non-empty, any character but NUL, biased
/// towards the characters the printer must escape.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9+*-]{1,10}",
        "[0-9]{1,4}",
        "[^\u{0}]{1,8}",
        "[a-z:.() \"\\\\\t\r\n\u{b}\u{c}]{1,8}",
    ]
}

fn symbol() -> impl Strategy<Value = Symbol> {
    let package = prop_oneof![
        Just("lichat".to_owned()),
        Just("keyword".to_owned()),
        Just("shirakumo".to_owned()),
        name(),
    ];
    let known = proptest::sample::select(Known::ALL).prop_map(Symbol::Known);
    prop_oneof![
        known,
        (package, name()).prop_map(|(p, n)| Symbol::new(&p, &n)),
    ]
}

fn integer() -> impl Strategy<Value = Integer> {
    prop_oneof![
        any::<u64>().prop_map(Integer::Small),
        "[1-9][0-9]{20,60}".prop_map(|d| Integer::from_digits(&d).expect("digits")),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), 0.0f64..1e6, any::<f64>().prop_map(f64::abs),]
        .prop_filter("printable", |f| f.is_finite())
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        symbol().prop_map(Value::Symbol),
        "[^\u{0}]{0,20}".prop_map(Value::String),
        integer().prop_map(Value::Integer),
        float().prop_map(Value::Float),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop::collection::vec(inner, 0..6).prop_map(Value::List)
    })
}

fn object() -> impl Strategy<Value = Object> {
    let key = prop_oneof![
        proptest::sample::select(Known::ALL)
            .prop_filter("keyword", |k| k.package() == Package::Keyword)
            .prop_map(Symbol::Known),
        name().prop_map(|n| Symbol::keyword(&n)),
    ];
    (symbol(), prop::collection::vec((key, value()), 0..6))
        .prop_map(|(class, fields)| Object { class, fields })
}

proptest! {
    #[test]
    fn printed_value_reads_back_equal_1(v in value()) {
        let mut out = Vec::new();
        print_value(&v, &mut out).unwrap();
        prop_assert!(!out.contains(&0));
        let back = read_value(&out).unwrap();
        prop_assert_eq!(&back, &v);
        let mut again = Vec::new();
        print_value(&back, &mut again).unwrap();
        prop_assert_eq!(again, out);
    }

    #[test]
    fn printed_updates_read_back_equal_in_any_split_3_1(
        objects in prop::collection::vec(object(), 1..4),
        cuts in prop::collection::vec(1usize..40, 1..8),
    ) {
        let mut stream = Vec::new();
        for o in &objects {
            print_update(o, &mut stream).unwrap();
        }
        let mut reader = Reader::new(stream.len());
        let mut got = Vec::new();
        let mut rest = &stream[..];
        let mut i = 0;
        while !rest.is_empty() {
            let (piece, tail) = rest.split_at(cuts[i % cuts.len()].min(rest.len()));
            reader.feed(piece, |u| got.push(u));
            prop_assert!(reader.buffered() <= reader.max());
            rest = tail;
            i += 1;
        }
        let expected: Vec<_> = objects.into_iter().map(Ok).collect();
        prop_assert_eq!(got, expected);
    }
}
