//! §1 printing: symbols, strings, numbers, lists and updates, byte for byte.

use lichat_tcp_server::wire::*;

fn printed(v: &Value) -> String {
    let mut out = Vec::new();
    print_value(v, &mut out).unwrap_or_else(|e| panic!("{v:?}: {e}"));
    String::from_utf8(out).expect("UTF-8")
}

fn sym(package: &str, name: &str) -> Value {
    Value::Symbol(Symbol::new(package, name))
}

fn print_error(v: &Value) -> PrintError {
    let mut out = Vec::new();
    print_value(v, &mut out).expect_err("should not print")
}

fn reads_back(v: &Value) {
    let text = printed(v);
    assert_eq!(&read_value(text.as_bytes()).unwrap(), v, "{text}");
}

#[test]
fn lichat_symbols_print_bare_in_lower_case_1_1() {
    assert_eq!(printed(&Value::sym(Known::Message)), "message");
    assert_eq!(printed(&sym("LICHAT", "Foo-Bar")), "foo-bar");
    assert_eq!(printed(&Value::T), "t");
    assert_eq!(printed(&Value::NIL), "nil");
}

#[test]
fn keywords_print_with_a_colon_1_1() {
    assert_eq!(printed(&Value::sym(Known::KId)), ":id");
    assert_eq!(printed(&sym("keyword", "Unknown-Key")), ":unknown-key");
}

#[test]
fn other_packages_print_their_name_and_a_colon_1_1() {
    assert_eq!(printed(&Value::sym(Known::SData)), "shirakumo:data");
    assert_eq!(printed(&sym("Foo", "BAR")), "foo:bar");
}

#[test]
fn terminals_and_white_space_in_names_are_escaped_1_1() {
    let v = sym("lichat", "a b:c.d(e)f\"g\\h\ti\nj");
    assert_eq!(printed(&v), "a\\ b\\:c\\.d\\(e\\)f\\\"g\\\\h\\\ti\\\nj");
    reads_back(&v);
}

#[test]
fn terminals_in_package_names_are_escaped_1_1() {
    let v = sym("my pkg:x", "name");
    assert_eq!(printed(&v), "my\\ pkg\\:x:name");
    reads_back(&v);
}

#[test]
fn all_digit_name_is_escaped_so_it_reads_as_a_symbol_1_1() {
    let v = sym("lichat", "123");
    assert_eq!(printed(&v), "\\123");
    reads_back(&v);
    reads_back(&sym("7", "8"));
}

#[test]
fn names_that_only_start_with_digits_print_plainly_1_1() {
    let v = sym("lichat", "1a");
    assert_eq!(printed(&v), "1a");
    reads_back(&v);
}

#[test]
fn escaped_t_name_prints_as_t_1_1() {
    assert_eq!(printed(&Value::Symbol(Symbol::lichat("T"))), "t");
}

#[test]
fn symbol_containing_nul_is_refused_1_3() {
    assert_eq!(print_error(&sym("lichat", "a\0b")), PrintError::NulInSymbol);
    assert_eq!(print_error(&sym("p\0", "a")), PrintError::NulInSymbol);
}

#[test]
fn symbol_with_an_empty_name_is_refused_1() {
    assert_eq!(print_error(&sym("lichat", "")), PrintError::EmptyName);
    assert_eq!(print_error(&sym("", "a")), PrintError::EmptyName);
}

#[test]
fn strings_escape_quote_and_backslash_1() {
    assert_eq!(printed(&Value::string("a\"b\\c")), r#""a\"b\\c""#);
    assert_eq!(printed(&Value::string("")), r#""""#);
    assert_eq!(printed(&Value::string("☃ (x) :y.")), "\"☃ (x) :y.\"");
    reads_back(&Value::string("a\"b\\c\n"));
}

#[test]
fn nul_is_filtered_out_of_strings_1_3() {
    assert_eq!(printed(&Value::string("a\0b\0")), "\"ab\"");
    assert_eq!(printed(&Value::string("\0")), "\"\"");
}

#[test]
fn integers_print_their_decimal_digits_1() {
    assert_eq!(printed(&Value::int(0)), "0");
    assert_eq!(printed(&Value::int(3_900_000_000)), "3900000000");
    assert_eq!(printed(&Value::int(u64::MAX)), "18446744073709551615");
    let big = Integer::from_digits("123456789012345678901234567890").unwrap();
    assert_eq!(
        printed(&Value::Integer(big)),
        "123456789012345678901234567890"
    );
}

#[test]
fn floats_print_with_a_dot_and_read_back_1() {
    for (f, text) in [
        (1.0, "1.0"),
        (0.0, "0.0"),
        (0.5, "0.5"),
        (12.125, "12.125"),
        (1e21, "1000000000000000000000.0"),
    ] {
        assert_eq!(printed(&Value::Float(f)), text);
        reads_back(&Value::Float(f));
    }
    reads_back(&Value::Float(0.1));
    reads_back(&Value::Float(f64::MAX));
    reads_back(&Value::Float(f64::MIN_POSITIVE));
    reads_back(&Value::Float(5e-324));
}

#[test]
fn negative_and_non_finite_floats_are_refused_1() {
    for f in [-1.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(print_error(&Value::Float(f)), PrintError::UnprintableFloat);
    }
}

#[test]
fn lists_print_space_separated_1() {
    let v = Value::List(vec![
        Value::int(1),
        Value::string("a"),
        Value::List(vec![sym("lichat", "b"), Value::List(vec![])]),
    ]);
    assert_eq!(printed(&v), "(1 \"a\" (b ()))");
    assert_eq!(printed(&Value::List(vec![])), "()");
    reads_back(&v);
}

#[test]
fn update_prints_as_object_then_nul_3_1() {
    let obj = Object::new(Known::Message)
        .with(Known::KId, 7u64)
        .with(Known::KFrom, "ann")
        .with(Known::KChannel, "lobby")
        .with(Known::KText, "hi \"you\"");
    assert_eq!(
        update_to_vec(&obj).unwrap(),
        b"(message :id 7 :from \"ann\" :channel \"lobby\" :text \"hi \\\"you\\\"\")\0"
    );
}

#[test]
fn update_that_cannot_print_appends_nothing_1_3() {
    let obj = Object::new(Known::Ping).with(Symbol::keyword("bad\0key"), 1u64);
    let mut out = b"kept".to_vec();
    assert_eq!(print_update(&obj, &mut out), Err(PrintError::NulInSymbol));
    assert_eq!(out, b"kept");
    let obj = Object::new(Known::Ping).with(Known::KClock, Value::Float(-1.0));
    assert_eq!(
        print_update(&obj, &mut out),
        Err(PrintError::UnprintableFloat)
    );
    assert_eq!(out, b"kept");
}

#[test]
fn printed_update_reads_back_equal_1() {
    let obj = Object::new(Known::SData)
        .with(
            Known::KId,
            Value::Integer(Integer::from_digits("99999999999999999999999").unwrap()),
        )
        .with(Known::KPayload, "a\\b\"c")
        .with(Symbol::new("other", "signature"), Value::Float(2.5))
        .with(
            Known::KExtensions,
            Value::List(vec![Value::string("x"), Value::T, Value::NIL]),
        );
    let bytes = update_to_vec(&obj).unwrap();
    match read_update(&bytes) {
        Status::Complete(Ok(back), used) => {
            assert_eq!(used, bytes.len());
            assert_eq!(back, obj);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn extension_field_keys_read_as_keywords_with_or_without_package_shirakumo() {
    for text in [
        &b"(message :id 1 shirakumo:rich (:g ()))"[..],
        b"(message :id 1 :rich (:g ()))",
    ] {
        let obj = read_object(text).unwrap();
        assert_eq!(obj.fields[1].0, Symbol::Known(Known::KRich));
        let printed = update_to_vec(&obj).unwrap();
        assert!(printed.starts_with(b"(message :id 1 :rich "), "{printed:?}");
    }
}

#[test]
fn string_escapes_are_found_at_every_offset_1_3() {
    for len in 0..40 {
        for at in 0..len {
            for special in ['"', '\\', '\0'] {
                let mut text: Vec<char> = "abcdefghijklmnopqrstuvwxyzé☃0123456789AB"
                    .chars()
                    .take(len)
                    .collect();
                text[at] = special;
                let text: String = text.into_iter().collect();
                let mut expected = String::from("\"");
                for c in text.chars() {
                    match c {
                        '\0' => {}
                        '"' | '\\' => {
                            expected.push('\\');
                            expected.push(c);
                        }
                        c => expected.push(c),
                    }
                }
                expected.push('"');
                assert_eq!(printed(&Value::string(text.clone())), expected, "{text:?}");
            }
        }
    }
}
