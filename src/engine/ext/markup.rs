//! shirakumo-markup (§13 of `shirakumo.mess`): a `text-update` may carry
//! its text as a `rich` syntax tree. The server checks the tree against
//! §13's grammar, within a depth and size bound, and passes it on; it
//! does not compare it with `text` (the grammar does not say how block
//! boundaries appear in the plain text).

use crate::engine::Failure;
use crate::engine::registry::{Extension, Hooks};
use crate::protocol::{Ty, is_a, opt};
use crate::wire::{Known as K, Object, Value};

/// §13: the `rich` field of `text-update` and its subclasses.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-markup"],
    hooks: Hooks {
        check: Some(check_rich),
        ..Hooks::NONE
    },
    fields: &[(K::TextUpdate, opt(K::KRich, Ty::List))],
    classes: &[],
};

/// Deepest nesting of nodes a `rich` tree may have.
pub const MAX_DEPTH: usize = 32;
/// Most nodes (lists and strings) a `rich` tree may have.
pub const MAX_NODES: usize = 20_000;

fn check_rich(update: &Object, class: K) -> Result<(), Failure> {
    if !is_a(class, K::TextUpdate) {
        return Ok(());
    }
    let Some(rich) = update.get(K::KRich) else {
        return Ok(());
    };
    validate(rich).map_err(|why| {
        Failure::new(
            K::MalformedUpdate,
            format!("The field :rich is not valid markup (§13): {why}."),
        )
    })
}

/// §13 `rich ::= group`.
pub fn validate(rich: &Value) -> Result<(), String> {
    let mut nodes = 0;
    if kind_of(rich) != Some("g") {
        return Err("it must be a group, (:g () ...)".into());
    }
    node(rich, Context::Content, 1, &mut nodes)
}

/// Where a node stands: `content` admits blocks and inlines, `inline`
/// only inlines.
#[derive(Copy, Clone, PartialEq)]
enum Context {
    Content,
    Inline,
}

const BLOCKS: &[&str] = &["g", "p", "ul", "ol", "code", "section", "image", "quote"];

/// The keyword naming a node's kind, if it is a list headed by one.
fn kind_of(v: &Value) -> Option<&str> {
    match v.as_list()?.first()? {
        Value::Symbol(s) if s.package() == "keyword" => Some(s.name()),
        _ => None,
    }
}

/// `()` as written: NIL or the empty list.
fn is_empty(v: &Value) -> bool {
    v.is_nil()
}

fn node(v: &Value, ctx: Context, depth: usize, nodes: &mut usize) -> Result<(), String> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(format!("it has more than {MAX_NODES} nodes"));
    }
    if depth > MAX_DEPTH {
        return Err(format!("it is nested deeper than {MAX_DEPTH}"));
    }
    if matches!(v, Value::String(_)) {
        return Ok(());
    }
    let Some(items) = v.as_list() else {
        return Err(format!("{v:?} is neither a string nor a node"));
    };
    let (head, arg, rest) = match items {
        [Value::Symbol(head), arg, rest @ ..] => (head, Some(arg), rest),
        [Value::Symbol(head)] => (head, None, &[][..]),
        _ => return Err("a node must be a list headed by a symbol".into()),
    };
    let kind = (head.package() == "keyword").then(|| head.name());
    let children = |ctx, nodes: &mut usize| {
        rest.iter()
            .try_for_each(|c| node(c, ctx, depth + 1, nodes))
    };
    let need_arg = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!("(:{} ...) needs {what} as its second element", head.name()))
        }
    };
    match kind {
        Some(k) if BLOCKS.contains(&k) && ctx == Context::Inline => {
            Err(format!("the block (:{k} ...) stands where only inline text may"))
        }
        Some("g") => {
            need_arg("()", arg.is_some_and(is_empty))?;
            children(Context::Content, nodes)
        }
        Some("p") => {
            need_arg("()", arg.is_some_and(is_empty))?;
            children(Context::Inline, nodes)
        }
        Some(k @ ("ul" | "ol")) => {
            need_arg("()", arg.is_some_and(is_empty))?;
            for item in rest {
                if kind_of(item) != Some("g") {
                    return Err(format!("each item of (:{k} ...) must be a group"));
                }
                node(item, Context::Content, depth + 1, nodes)?;
            }
            Ok(())
        }
        Some("code") => match (arg, rest) {
            (Some(Value::String(_)), [Value::String(_)]) => Ok(()),
            _ => Err("(:code ...) needs a language string and a code string".into()),
        },
        Some("section") => {
            let header = arg.and_then(Value::as_list).unwrap_or(&[]);
            match header {
                [Value::Integer(_), inline @ ..] => {
                    for i in inline {
                        node(i, Context::Inline, depth + 1, nodes)?;
                    }
                }
                _ => return Err("(:section ...) needs (depth inline...) as its header".into()),
            }
            children(Context::Content, nodes)
        }
        Some("image") => match (arg, rest) {
            (Some(Value::String(_)), []) => Ok(()),
            _ => Err("(:image ...) needs exactly one target string".into()),
        },
        Some("quote") => {
            need_arg("an author string", matches!(arg, Some(Value::String(_))))?;
            children(Context::Content, nodes)
        }
        Some("b" | "i" | "u" | "s" | "m" | "sub" | "sup") => {
            need_arg("()", arg.is_some_and(is_empty))?;
            children(Context::Inline, nodes)
        }
        Some("link") => {
            need_arg("a target string", matches!(arg, Some(Value::String(_))))?;
            children(Context::Inline, nodes)
        }
        Some("color") => {
            need_arg(
                "an (r g b) list of numbers from 0 to 1",
                arg.and_then(Value::as_list).is_some_and(is_rgb),
            )?;
            children(Context::Inline, nodes)
        }
        // Extended blocks and inlines: (symbol list children...).
        _ => {
            need_arg("a list", arg.is_some_and(|a| a.as_list().is_some() || is_empty(a)))?;
            children(ctx, nodes)
        }
    }
}

/// §13 `rgb ::= (float float float)`, each from 0 to 1.
fn is_rgb(items: &[Value]) -> bool {
    items.len() == 3
        && items.iter().all(|v| match v {
            Value::Float(f) => (0.0..=1.0).contains(f),
            Value::Integer(n) => matches!(n, crate::wire::Integer::Small(0 | 1)),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::validate;
    use crate::wire::read_value;

    fn check(text: &str) -> Result<(), String> {
        validate(&read_value(text.as_bytes()).unwrap())
    }

    #[test]
    fn markup_13_accepts_every_form_of_the_grammar() {
        for ok in [
            "(:g ())",
            r#"(:g () "plain" (:p () "a" (:b () "bold" (:i () "x")) (:link "https://x" "l")))"#,
            r#"(:g () (:ul () (:g () "one") (:g () "two")) (:ol ()))"#,
            r#"(:g () (:code "rust" "fn main() {}") (:image "https://x/i.png"))"#,
            r#"(:g () (:section (1 "Title" (:m () "x")) (:p () "body")))"#,
            r#"(:g () (:quote "ann" (:p () "said")) (:color (1.0 0.5 0) "red"))"#,
            r#"(:g () (:sub () "2") (:sup () "3") (:u () "u") (:s () "s"))"#,
            r#"(:g () (:spoiler () "x") (:p () (:kbd (1 2) "k")) (ext:thing nil (:p ())))"#,
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn markup_13_refuses_what_the_grammar_does_not_produce() {
        for bad in [
            r#""just text""#,
            r#"(:p () "not a group")"#,
            r#"(:g () (:p () (:p () "block in inline")))"#,
            r#"(:g () (:ul () "item not a group"))"#,
            r#"(:g () (:code "rust"))"#,
            r#"(:g () (:section ("1") "x"))"#,
            r#"(:g () (:image "a" "b"))"#,
            r#"(:g () (:color (1.0 2.0 0) "x"))"#,
            r#"(:g () (:link () "x"))"#,
            r#"(:g () (:b "arg" "x"))"#,
            r#"(:g () 12)"#,
            r#"(:g () ("head not a symbol"))"#,
            r#"(:g () (:ext "not a list"))"#,
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn markup_13_bounds_depth_and_size() {
        let deep = format!("{}\"x\"{}", "(:g () ".repeat(40), ")".repeat(40));
        assert!(check(&deep).unwrap_err().contains("deeper"));
        let wide = format!("(:g () {})", "\"x\" ".repeat(super::MAX_NODES + 1));
        assert!(check(&wide).unwrap_err().contains("nodes"));
    }
}
