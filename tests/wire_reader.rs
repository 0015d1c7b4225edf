//! §1 and §3.1: the reader, rule by rule, and the incremental `Reader`.

use lichat_tcp_server::wire::*;

fn value(text: &str) -> Value {
    read_value(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn symbol(text: &str) -> Symbol {
    match value(text) {
        Value::Symbol(s) => s,
        other => panic!("{text:?} read as {other:?}"),
    }
}

fn syntax_error(text: &str) -> ReadError {
    match read_value(text.as_bytes()) {
        Err(e @ ReadError::Syntax { .. }) => e,
        other => panic!("{text:?} should be a syntax error, got {other:?}"),
    }
}

fn other(package: &str, name: &str) -> Symbol {
    let s = Symbol::new(package, name);
    assert!(s.known().is_none(), "{package}:{name} is a known symbol");
    s
}

/// Every prefix of a complete update is "need more", never an error
/// (design lesson 1), and the whole update is complete at its NUL.
fn assert_prefixes_are_partial(update: &[u8]) {
    let end = update.iter().position(|&b| b == 0).expect("a NUL");
    for i in 0..=end {
        assert_eq!(read_update(&update[..i]), Status::Partial, "prefix {i}");
    }
    assert!(matches!(
        read_update(update),
        Status::Complete(_, used) if used == end + 1
    ));
}

fn feed_all(reader: &mut Reader, bytes: &[u8]) -> Vec<Result<Object, ReadError>> {
    let mut out = Vec::new();
    reader.feed(bytes, |u| out.push(u));
    out
}

fn feed_bytewise(reader: &mut Reader, bytes: &[u8]) -> Vec<Result<Object, ReadError>> {
    let mut out = Vec::new();
    for b in bytes {
        reader.feed(std::slice::from_ref(b), |u| out.push(u));
    }
    out
}

// §1.1 symbols -------------------------------------------------------------

#[test]
fn upper_case_t_reads_as_true_1_1() {
    assert_eq!(value("T"), Value::T);
}

#[test]
fn lower_case_t_reads_as_true_1_1() {
    assert_eq!(value("t"), Value::T);
}

#[test]
fn escaped_t_reads_as_true_1_1() {
    assert_eq!(symbol("\\T"), Symbol::Known(Known::T));
}

#[test]
fn nil_in_any_case_reads_as_null_1_1() {
    for text in ["Nil", "NIL", "nil", "\\N\\I\\L"] {
        assert_eq!(value(text), Value::NIL, "{text}");
        assert!(value(text).is_nil());
    }
}

#[test]
fn colon_name_reads_as_keyword_1_1() {
    let s = symbol(":a");
    assert_eq!(s, other("keyword", "a"));
    assert!(s.is_keyword());
    assert_eq!((s.package(), s.name()), ("keyword", "a"));
}

#[test]
fn package_colon_name_reads_in_that_package_1_1() {
    let s = symbol("b:a");
    assert_eq!((s.package(), s.name()), ("b", "a"));
    assert_eq!(s, other("b", "a"));
}

#[test]
fn escaped_letter_in_name_is_that_letter_1_1() {
    let s = symbol("a\\a");
    assert_eq!((s.package(), s.name()), ("lichat", "aa"));
}

#[test]
fn escaped_leading_colon_is_part_of_a_lichat_name_1_1() {
    let s = symbol("\\:a");
    assert_eq!((s.package(), s.name()), ("lichat", ":a"));
}

#[test]
fn escaped_inner_colon_is_part_of_a_lichat_name_1_1() {
    let s = symbol("b\\:a");
    assert_eq!((s.package(), s.name()), ("lichat", "b:a"));
}

#[test]
fn escaped_terminals_and_white_space_are_part_of_a_name_1_1() {
    let s = symbol("a\\ b\\.c\\(d\\)e\\\"f\\\\g");
    assert_eq!(s.name(), "a b.c(d)e\"f\\g");
}

#[test]
fn names_end_at_terminals_1() {
    let lichat = |n: &str| Value::Symbol(Symbol::lichat(n));
    assert_eq!(value("(abc)"), Value::List(vec![lichat("abc")]));
    assert_eq!(
        value("(abc ())"),
        Value::List(vec![lichat("abc"), Value::List(vec![])])
    );
    assert_eq!(symbol("abc:def"), Symbol::new("abc", "def"));
    assert_eq!(
        value("(a \"b\")"),
        Value::List(vec![lichat("a"), Value::string("b")])
    );
}

#[test]
fn each_white_character_ends_a_name_1() {
    for white in ["\t", "\n", "\u{b}", "\u{c}", "\r", " "] {
        let text = format!("(a{white}b)");
        assert_eq!(
            value(&text),
            Value::List(vec![
                Value::Symbol(Symbol::lichat("a")),
                Value::Symbol(Symbol::lichat("b"))
            ]),
            "{white:?}"
        );
    }
}

#[test]
fn symbol_names_and_packages_fold_case_1_1() {
    assert_eq!(symbol("MESSAGE"), Symbol::Known(Known::Message));
    assert_eq!(symbol(":ID"), Symbol::Known(Known::KId));
    assert_eq!(symbol("Shirakumo:DATA"), Symbol::Known(Known::SData));
    assert_eq!(symbol("lichat:Ping"), Symbol::Known(Known::Ping));
    assert_eq!(symbol("KEYWORD:clock"), Symbol::Known(Known::KClock));
    let s = symbol("Foo:BAR");
    assert_eq!((s.package(), s.name()), ("foo", "bar"));
    assert_eq!(symbol("ÄÖ").name(), "äö");
}

#[test]
fn unknown_symbols_are_carried_by_value_1_1() {
    let s = symbol("no-such-package:no-such-name");
    assert!(s.known().is_none());
    assert!(matches!(s, Symbol::Other(_)));
    let k = symbol(":no-such-keyword");
    assert!(k.known().is_none());
    assert!(k.is_keyword());
}

#[test]
fn digits_followed_by_name_characters_are_a_symbol_1() {
    assert_eq!(symbol("1a").name(), "1a");
    assert_eq!(symbol("12-34").name(), "12-34");
}

#[test]
fn minus_sign_makes_a_symbol_not_a_negative_number_1() {
    assert_eq!(symbol("-1").name(), "-1");
    assert_eq!(symbol("-"), Symbol::Known(Known::Minus));
    assert_eq!(symbol("+"), Symbol::Known(Known::Plus));
}

#[test]
fn keyword_with_a_package_is_a_syntax_error_1() {
    syntax_error(":a:b");
}

#[test]
fn symbol_with_two_packages_is_a_syntax_error_1() {
    syntax_error("a:b:c");
}

#[test]
fn empty_names_are_syntax_errors_1() {
    for text in [":", "a:", ":\"x\"", "(a :)"] {
        syntax_error(text);
    }
}

#[test]
fn escape_at_end_of_update_is_a_syntax_error_1() {
    syntax_error("a\\");
}

// §1 strings ---------------------------------------------------------------

#[test]
fn string_reads_its_characters_1() {
    assert_eq!(value("\"hello, world\""), Value::string("hello, world"));
    assert_eq!(value("\"\""), Value::string(""));
    assert_eq!(value("\"héllo ☃ 🐱\""), Value::string("héllo ☃ 🐱"));
}

#[test]
fn string_escapes_take_the_next_character_literally_1() {
    assert_eq!(value(r#""a\"b""#), Value::string("a\"b"));
    assert_eq!(value(r#""a\\b""#), Value::string("a\\b"));
    assert_eq!(value(r#""\n\t""#), Value::string("nt"));
    assert_eq!(value(r#""\☃""#), Value::string("☃"));
    assert_eq!(value(r#""\"""#), Value::string("\""));
}

#[test]
fn string_keeps_white_space_and_terminals_1() {
    assert_eq!(
        value("\" (a) :b.c\t\r\n\""),
        Value::string(" (a) :b.c\t\r\n")
    );
}

#[test]
fn unterminated_string_is_a_syntax_error_1() {
    syntax_error("\"abc");
    syntax_error("\"abc\\\"");
    syntax_error("(a :b \"c)");
}

#[test]
fn nul_inside_a_string_is_refused_1_3() {
    syntax_error("\"a\0b\"");
    syntax_error("\"a\\\0b\"");
    syntax_error("a\\\0b");
}

// §1 numbers ---------------------------------------------------------------

#[test]
fn digits_read_as_an_integer_1() {
    assert_eq!(value("1"), Value::int(1));
    assert_eq!(value("0"), Value::int(0));
    assert_eq!(value("3900000000"), Value::int(3_900_000_000));
}

#[test]
fn leading_zeros_do_not_change_an_integer_1() {
    assert_eq!(value("007"), Value::int(7));
    assert_eq!(value("000"), Value::int(0));
}

#[test]
fn one_dot_reads_as_float_one_1() {
    assert_eq!(value("1."), Value::Float(1.0));
}

#[test]
fn one_dot_zero_reads_as_float_one_1() {
    assert_eq!(value("1.0"), Value::Float(1.0));
}

#[test]
fn zero_one_dot_reads_as_float_one_1() {
    assert_eq!(value("01."), Value::Float(1.0));
}

#[test]
fn dot_zero_reads_as_float_zero_1() {
    assert_eq!(value(".0"), Value::Float(0.0));
}

#[test]
fn lone_dot_reads_as_float_zero_1() {
    assert_eq!(value("."), Value::Float(0.0));
    assert_eq!(value("(.)"), Value::List(vec![Value::Float(0.0)]));
}

#[test]
fn fractions_read_as_floats_1() {
    assert_eq!(value("0.5"), Value::Float(0.5));
    assert_eq!(value(".25"), Value::Float(0.25));
    assert_eq!(value("12.125"), Value::Float(12.125));
}

#[test]
fn u64_max_is_a_small_integer_1() {
    assert_eq!(value("18446744073709551615"), Value::int(u64::MAX));
}

#[test]
fn integer_beyond_u64_keeps_its_digits_1() {
    assert_eq!(
        value("18446744073709551616"),
        Value::Integer(Integer::Big("18446744073709551616".into()))
    );
    assert_eq!(
        value("000123456789012345678901234567890"),
        Value::Integer(Integer::Big("123456789012345678901234567890".into()))
    );
}

#[test]
fn integer_from_digits_normalises_1() {
    assert_eq!(Integer::from_digits("0042"), Some(Integer::Small(42)));
    assert_eq!(Integer::from_digits("0"), Some(Integer::Small(0)));
    assert_eq!(Integer::from_digits(""), None);
    assert_eq!(Integer::from_digits("12a"), None);
    assert_eq!(
        Integer::from_digits("99999999999999999999"),
        Some(Integer::Big("99999999999999999999".into()))
    );
}

#[test]
fn number_with_two_dots_is_a_syntax_error_1() {
    syntax_error("1.2.3");
    syntax_error("..");
}

#[test]
fn dotted_number_followed_by_a_name_is_a_syntax_error_1() {
    syntax_error("1.5a");
    syntax_error(".x");
}

#[test]
fn float_too_large_for_f64_is_a_syntax_error_1() {
    let text = format!("{}.", "9".repeat(400));
    syntax_error(&text);
}

// §1 lists -----------------------------------------------------------------

#[test]
fn empty_list_is_a_list_and_counts_as_nil_1() {
    let v = value("()");
    assert_eq!(v, Value::List(vec![]));
    assert_ne!(v, Value::NIL);
    assert!(v.is_nil());
    assert_eq!(value("(  \t )"), Value::List(vec![]));
}

#[test]
fn lists_nest_1() {
    assert_eq!(
        value("(1 (\"a\" (b (:c ()))) 2.5)"),
        Value::List(vec![
            Value::int(1),
            Value::List(vec![
                Value::string("a"),
                Value::List(vec![
                    Value::Symbol(Symbol::lichat("b")),
                    Value::List(vec![
                        Value::Symbol(Symbol::keyword("c")),
                        Value::List(vec![])
                    ]),
                ]),
            ]),
            Value::Float(2.5),
        ])
    );
}

#[test]
fn unbalanced_close_paren_is_a_syntax_error_1() {
    syntax_error(")");
    syntax_error("(a))");
}

#[test]
fn unclosed_list_is_a_syntax_error_1() {
    syntax_error("(a (b)");
    syntax_error("(");
}

#[test]
fn text_after_the_expression_is_a_syntax_error_1() {
    syntax_error("(a) b");
    syntax_error("(a) (b)");
}

#[test]
fn empty_input_is_a_syntax_error_1() {
    syntax_error("");
    syntax_error(" \t\n");
}

#[test]
fn lists_nested_to_max_depth_are_read_1() {
    let text = format!("{}{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    let mut v = value(&text);
    for _ in 1..MAX_DEPTH {
        let Value::List(mut items) = v else {
            panic!("not a list")
        };
        v = items.pop().expect("one element");
    }
    assert_eq!(v, Value::List(vec![]));
}

#[test]
fn lists_nested_past_max_depth_are_refused_1() {
    let text = format!("{}{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    assert_eq!(read_value(text.as_bytes()), Err(ReadError::TooDeep));
}

#[test]
fn a_megabyte_of_open_parens_does_not_overflow_the_stack_1() {
    let mut input = vec![b'('; 1 << 20];
    assert_eq!(read_value(&input), Err(ReadError::TooDeep));
    input.push(0);
    let mut reader = Reader::new(2 << 20);
    assert_eq!(feed_all(&mut reader, &input), vec![Err(ReadError::TooDeep)]);
}

// §1 white space -----------------------------------------------------------

#[test]
fn every_white_character_separates_and_surrounds_1() {
    let text = "\t\n\u{b}\u{c}\r (ping\t:id\n1\u{b}:clock\u{c}2\r:from  \"x\"\t\r\n)\u{b}\u{c}";
    let obj = read_object(text.as_bytes()).unwrap();
    assert_eq!(
        obj,
        Object::new(Known::Ping)
            .with(Known::KId, 1u64)
            .with(Known::KClock, 2u64)
            .with(Known::KFrom, "x")
    );
}

#[test]
fn other_control_characters_are_not_white_space_1() {
    // U+0085 and U+00A0 are not WHITE in the BNF: they are name characters.
    let v = value("(a\u{a0}b)");
    assert_eq!(
        v,
        Value::List(vec![Value::Symbol(Symbol::lichat("a\u{a0}b"))])
    );
}

// §1.2 objects -------------------------------------------------------------

#[test]
fn object_reads_class_and_fields_in_order_1_2() {
    let obj = read_object(b"(message :id 7 :channel \"lobby\" :text \"hi\")").unwrap();
    assert_eq!(obj.class, Symbol::Known(Known::Message));
    assert_eq!(obj.get(Known::KId), Some(&Value::int(7)));
    assert_eq!(obj.get(Known::KChannel), Some(&Value::string("lobby")));
    assert_eq!(obj.fields.len(), 3);
}

#[test]
fn object_that_is_not_a_list_is_refused_1_2() {
    assert_eq!(
        read_object(b"ping"),
        Err(ReadError::Object(ObjectError::NotAList))
    );
    assert_eq!(
        read_object(b"\"ping\""),
        Err(ReadError::Object(ObjectError::NotAList))
    );
}

#[test]
fn object_without_a_class_is_refused_1_2() {
    assert_eq!(
        read_object(b"()"),
        Err(ReadError::Object(ObjectError::Empty))
    );
}

#[test]
fn object_whose_first_element_is_not_a_symbol_is_refused_1_2() {
    for text in [&b"(\"ping\" :id 1)"[..], b"(1 :id 1)", b"((ping) :id 1)"] {
        assert_eq!(
            read_object(text),
            Err(ReadError::Object(ObjectError::ClassNotSymbol))
        );
    }
}

#[test]
fn object_with_a_key_and_no_value_is_refused_1_2() {
    assert_eq!(
        read_object(b"(ping :id)"),
        Err(ReadError::Object(ObjectError::OddFields))
    );
    assert_eq!(
        read_object(b"(ping :id 1 :clock)"),
        Err(ReadError::Object(ObjectError::OddFields))
    );
}

#[test]
fn object_with_a_non_keyword_key_is_refused_1_2() {
    assert_eq!(
        read_object(b"(ping id 1)"),
        Err(ReadError::Object(ObjectError::KeyNotKeyword(1)))
    );
    assert_eq!(
        read_object(b"(ping :id 1 \"clock\" 2)"),
        Err(ReadError::Object(ObjectError::KeyNotKeyword(3)))
    );
    assert_eq!(
        read_object(b"(ping :id 1 2 3)"),
        Err(ReadError::Object(ObjectError::KeyNotKeyword(3)))
    );
}

#[test]
fn object_key_from_an_extension_package_is_accepted_1_2() {
    // A known extension field is the keyword it is sent as.
    let obj = read_object(b"(message :id 1 shirakumo:signature \"s\")").unwrap();
    assert_eq!(obj.fields[1].0, Symbol::Known(Known::KSignature));
    let obj = read_object(b"(message :id 1 other:field \"s\")").unwrap();
    assert_eq!(obj.fields[1].0, Symbol::new("other", "field"));
}

#[test]
fn object_errors_are_distinct_and_explain_themselves_1_2() {
    let errors = [
        ObjectError::NotAList,
        ObjectError::Empty,
        ObjectError::ClassNotSymbol,
        ObjectError::OddFields,
        ObjectError::KeyNotKeyword(3),
    ];
    let texts: std::collections::HashSet<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(texts.len(), errors.len());
    assert!(ObjectError::KeyNotKeyword(3).to_string().contains('3'));
}

#[test]
fn nil_field_counts_as_unset_1_2() {
    let obj = read_object(b"(ping :id 1 :from nil)").unwrap();
    assert_eq!(obj.get(Known::KFrom), None);
    assert_eq!(obj.get_raw(Known::KFrom), Some(&Value::NIL));
}

// §1 UTF-8 -----------------------------------------------------------------

#[test]
fn invalid_utf8_is_an_error_not_a_panic_1() {
    assert_eq!(
        read_value(b"(a \"\xff\")"),
        Err(ReadError::InvalidUtf8 { at: 4 })
    );
    assert_eq!(
        read_value(b"(a \xe2\x98)"),
        Err(ReadError::InvalidUtf8 { at: 3 })
    );
}

// §3.1 read_update ---------------------------------------------------------

#[test]
fn every_prefix_of_an_update_needs_more_3_1() {
    for update in [
        &b"(message :id 7 :from \"a\\\"b\" :text \"x y\")\0"[..],
        b"(ping :id 1.5 :x (1 (2 ())))\0",
        b"  (a:b :c\\:d e:f)\r\n\0",
        b"(broken\0",
    ] {
        assert_prefixes_are_partial(update);
    }
}

#[test]
fn read_update_never_looks_past_its_nul_3_1() {
    let input = b"(ping :id 1)\0(ping :id 2";
    match read_update(input) {
        Status::Complete(Ok(obj), used) => {
            assert_eq!(used, 13);
            assert_eq!(obj.get(Known::KId), Some(&Value::int(1)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(read_update(&input[13..]), Status::Partial);
}

// §3.1 and §5.1 the incremental reader -------------------------------------

#[test]
fn reader_fed_one_byte_at_a_time_yields_each_update_3_1() {
    let input = b"(ping :id 1)\0(pong :id 2 :text \"\\\"\")\0";
    let mut reader = Reader::new(100);
    let got = feed_bytewise(&mut reader, input);
    assert_eq!(
        got,
        vec![
            Ok(Object::new(Known::Ping).with(Known::KId, 1u64)),
            Ok(Object::new(Known::Pong)
                .with(Known::KId, 2u64)
                .with(Known::KText, "\"")),
        ]
    );
    assert_eq!(reader.buffered(), 0);
}

#[test]
fn reader_gives_the_same_updates_for_every_split_3_1() {
    let input = b"(ping :id 1)\0 \0(a :b \"c\")\0(x\0(pong :id 2)\0";
    let mut whole = Reader::new(100);
    let expected = feed_all(&mut whole, input);
    assert_eq!(expected.len(), 4);
    for cut in 0..=input.len() {
        let mut reader = Reader::new(100);
        let mut got = feed_all(&mut reader, &input[..cut]);
        got.extend(feed_all(&mut reader, &input[cut..]));
        assert_eq!(got, expected, "cut at {cut}");
    }
}

#[test]
fn reader_keeps_only_the_unfinished_update_3_1() {
    let mut reader = Reader::new(100);
    let got = feed_all(&mut reader, b"(ping :id 1)\0(pong");
    assert_eq!(got.len(), 1);
    assert_eq!(reader.buffered(), 5);
    let got = feed_all(&mut reader, b" :id 2)\0");
    assert_eq!(
        got,
        vec![Ok(Object::new(Known::Pong).with(Known::KId, 2u64))]
    );
    assert_eq!(reader.buffered(), 0);
}

#[test]
fn reader_skips_blank_segments_between_nuls_3_1() {
    let mut reader = Reader::new(100);
    let got = feed_all(&mut reader, b"\0\0 \r\n\0(ping :id 1)\0\n\0");
    assert_eq!(
        got,
        vec![Ok(Object::new(Known::Ping).with(Known::KId, 1u64))]
    );
}

#[test]
fn update_of_exactly_the_maximum_size_is_read_5_1() {
    let update = b"(ping :id 1)";
    let mut reader = Reader::new(update.len());
    let got = feed_bytewise(&mut reader, b"(ping :id 1)\0");
    assert_eq!(got.len(), 1);
    assert!(got[0].is_ok());
}

#[test]
fn too_long_update_is_skipped_to_its_nul_5_1_2() {
    let mut input = b"(message :text \"".to_vec();
    input.extend(std::iter::repeat_n(b'x', 10_000));
    input.extend_from_slice(b"\")\0(ping :id 2)\0");
    let mut reader = Reader::new(64);
    let got = feed_all(&mut reader, &input);
    assert_eq!(
        got,
        vec![
            Err(ReadError::TooLong),
            Ok(Object::new(Known::Ping).with(Known::KId, 2u64)),
        ]
    );
}

#[test]
fn too_long_update_is_never_buffered_past_the_maximum_5_1_2() {
    let mut input = b"(message :text \"".to_vec();
    input.extend(std::iter::repeat_n(b'x', 10_000));
    input.extend_from_slice(b"\")\0(ping :id 2)\0");
    let mut reader = Reader::new(64);
    let mut got = Vec::new();
    for chunk in input.chunks(7) {
        reader.feed(chunk, |u| got.push(u));
        assert!(reader.buffered() <= 64);
        assert!(reader.capacity() <= 4096);
    }
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], Err(ReadError::TooLong));
    assert!(got[1].is_ok());
    assert!(!reader.is_skipping());
}

#[test]
fn too_long_update_is_reported_as_soon_as_it_passes_the_maximum_5_1_2() {
    let mut reader = Reader::new(12);
    assert!(feed_all(&mut reader, b"(message :id").is_empty());
    assert_eq!(feed_all(&mut reader, b"t"), vec![Err(ReadError::TooLong)]);
    assert!(reader.is_skipping());
    assert_eq!(reader.buffered(), 0);
    assert!(feed_all(&mut reader, &[b'x'; 1000]).is_empty());
    assert_eq!(
        feed_all(&mut reader, b"\0(ping :id 3)\0"),
        vec![Ok(Object::new(Known::Ping).with(Known::KId, 3u64))]
    );
}

#[test]
fn syntax_error_resynchronises_at_the_next_nul_3_1() {
    let mut reader = Reader::new(100);
    let got = feed_bytewise(&mut reader, b"(ping :id \"1)\0(ping :id 2)\0");
    assert_eq!(got.len(), 2);
    assert!(matches!(got[0], Err(ReadError::Syntax { .. })));
    assert_eq!(got[1], Ok(Object::new(Known::Ping).with(Known::KId, 2u64)));
}

#[test]
fn invalid_utf8_update_is_reported_and_the_next_is_read_3_1() {
    let mut reader = Reader::new(100);
    let got = feed_bytewise(&mut reader, b"(ping :text \"\xc3\x28\")\0(ping :id 2)\0");
    assert_eq!(got[0], Err(ReadError::InvalidUtf8 { at: 13 }));
    assert_eq!(got[1], Ok(Object::new(Known::Ping).with(Known::KId, 2u64)));
}

#[test]
fn multibyte_character_split_across_feeds_is_read_3_1() {
    let mut reader = Reader::new(100);
    let got = feed_bytewise(&mut reader, "(ping :text \"☃🐱\")\0".as_bytes());
    assert_eq!(
        got,
        vec![Ok(Object::new(Known::Ping).with(Known::KText, "☃🐱"))]
    );
}

#[test]
fn reader_frees_a_large_buffer_after_its_update_3_1() {
    let mut reader = Reader::new(1 << 20);
    let mut input = b"(ping :text \"".to_vec();
    input.extend(std::iter::repeat_n(b'x', 100_000));
    input.extend_from_slice(b"\")");
    for chunk in input.chunks(1000) {
        assert!(feed_all(&mut reader, chunk).is_empty());
    }
    assert!(reader.capacity() >= 100_000);
    assert_eq!(feed_all(&mut reader, b"\0").len(), 1);
    assert_eq!(reader.capacity(), 0);
}

#[test]
fn set_max_changes_the_limit_for_later_updates_5_1_2() {
    let mut reader = Reader::new(5);
    assert_eq!(reader.max(), 5);
    assert_eq!(
        feed_all(&mut reader, b"(ping)\0"),
        vec![Err(ReadError::TooLong)]
    );
    reader.set_max(100);
    assert_eq!(
        feed_all(&mut reader, b"(ping)\0"),
        vec![Ok(Object::new(Known::Ping))]
    );
}

#[test]
fn client_id_beyond_u64_is_echoed_byte_for_byte_3() {
    let text = b"(ping :id 123456789012345678901234567890123)";
    let obj = read_object(text).unwrap();
    let mut out = Vec::new();
    print_object(&obj, &mut out).unwrap();
    assert_eq!(out, text);
}

#[test]
fn expressions_next_to_each_other_without_white_space_are_still_read_1() {
    // The BNF asks for WHITE+ between expressions; like the reference
    // reader, which only skips white space before each element, this one
    // accepts a list whose elements touch when they cannot be confused.
    assert_eq!(
        value("(a\"b\"(c)\"d\")"),
        Value::List(vec![
            Value::Symbol(Symbol::lichat("a")),
            Value::string("b"),
            Value::List(vec![Value::Symbol(Symbol::lichat("c"))]),
            Value::string("d"),
        ])
    );
}

#[test]
fn a_stopped_reader_parks_the_rest_unparsed_and_resumes_in_order_3_1() {
    use std::ops::ControlFlow;
    let input = b"(ping :id 1)\0(ping :id 2)\0(ping :id 3)\0(message :text \"x";
    let whole = feed_all(&mut Reader::new(1000), input);
    for stop_every in 1..=3 {
        let mut reader = Reader::new(1000);
        let mut got = Vec::new();
        let take = |got: &mut Vec<_>, u| {
            got.push(u);
            if got.len() % stop_every == 0 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        reader.feed_until(input, |u| take(&mut got, u));
        let mut rounds = 0;
        while reader.is_parked() {
            assert!(reader.buffered() <= input.len(), "no more than was given");
            reader.resume(|u| take(&mut got, u));
            rounds += 1;
            assert!(rounds <= 3);
        }
        assert_eq!(got, whole, "stopping every {stop_every}");
        // The unfinished update is kept as usual, and completes later.
        let mut rest = Vec::new();
        reader.feed(b"\")\0", |u| rest.push(u));
        assert_eq!(rest.len(), 1);
        assert!(rest[0].is_ok());
    }
}

#[test]
fn bare_extension_symbols_read_as_the_shirakumo_ones_1_1() {
    use lichat_tcp_server::wire::{Known, Symbol};
    for text in ["typing", "TYPING", "shirakumo:typing"] {
        assert_eq!(
            value(text),
            Value::Symbol(Symbol::Known(Known::STyping)),
            "{text}"
        );
    }
    // lichat's own symbols stay lichat's.
    assert_eq!(
        value("message"),
        Value::Symbol(Symbol::Known(Known::Message))
    );
    assert!(matches!(
        value("nosuchthing"),
        Value::Symbol(Symbol::Other(_))
    ));
}
