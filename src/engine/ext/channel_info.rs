//! shirakumo-channel-info (§6 of `shirakumo.mess`): a channel keeps a
//! table of metadata under the keys `:title :news :topic :rules :contact
//! :url` (and `:icon`, §16). Every key always exists; one that was never
//! set, or was set to the empty string, has the empty string as its value.
//! The text keys are kept together, as one association list, under this
//! extension's name in the channel's extension data; the icon apart
//! (`icons.rs`). Both are stored with the channel.

use super::icons::{ICON_DATA, check_icon};
use crate::engine::registry::{
    ChannelUse, Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks,
};
use crate::engine::state::ChanId;
use crate::engine::{Engine, Failure, Outbox, Request, send_to};
use crate::protocol::{Ty, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Object, Package, Symbol, Value, lower};

/// The name the text keys are kept under in a channel's extension data.
const INFO_DATA: &str = "shirakumo-channel-info";

/// Keys one `channel-info` may ask for by name: the server has seven, a
/// longer list can only repeat them or name unknown ones.
const MAX_KEYS: usize = 32;

/// Checked like any update to a channel (§5.1.6): it must exist, and an
/// anonymous one is known only to its members; no membership needed.
const ON_CHANNEL: Checks = Checks {
    channel: ChannelUse::Existing,
    ..Checks::SERVER
};

/// §6: `channel-info` and `set-channel-info`.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-channel-info"],
    hooks: Hooks::NONE,
    fields: &[],
    classes: &[
        ClassDef {
            class: K::SChannelInfo,
            // `keys` is T or a list of symbols; it is checked by the
            // handler, and left out it means T.
            fields: update_fields!(req(K::KChannel, Ty::Str), opt(K::KKeys, Ty::Id)),
            handler: channel_info,
            checks: ON_CHANNEL,
            // Anyone who can see the channel may read its info; anonymous
            // channels are seen by their members only (§2.4.2).
            rules: Defaults {
                primary: R::Anyone,
                regular: R::Anyone,
                anonymous: R::Anyone,
            },
        },
        ClassDef {
            class: K::SSetChannelInfo,
            fields: update_fields!(
                req(K::KChannel, Ty::Str),
                req(K::KKey, Ty::Symbol),
                req(K::KText, Ty::Str),
            ),
            handler: set_channel_info,
            checks: ON_CHANNEL,
            rules: Defaults {
                primary: R::Registrant,
                regular: R::Registrant,
                anonymous: R::Registrant,
            },
        },
    ],
};

/// What a key's text may look like (§6 and §14 let the server restrict
/// values).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// One line: no control characters at all.
    Line,
    /// Text of several lines: line breaks and tabs, no other control
    /// characters.
    Text,
    /// A URL: one word with a scheme (`https://...`, `mailto:...`).
    Url,
    /// An icon (§16).
    Icon,
}

/// §6 the keys, in the order `keys T` answers them, with their shape.
const KEYS: &[(K, Shape)] = &[
    (K::KTitle, Shape::Line),
    (K::KNews, Shape::Text),
    (K::KTopic, Shape::Text),
    (K::KRules, Shape::Text),
    (K::KContact, Shape::Text),
    (K::KUrl, Shape::Url),
    (K::KIcon, Shape::Icon),
];

/// §6, §14: the key a value names, if it is a keyword among `keys` (or, where
/// `strings` is true, a string naming one, with or without its colon).
pub(crate) fn find_key(keys: &[(K, Shape)], value: &Value, strings: bool) -> Option<(K, Shape)> {
    let known = match value {
        Value::Symbol(Symbol::Known(k)) if k.package() == Package::Keyword => Some(*k),
        Value::String(s) if strings => {
            let name = s.strip_prefix(':').unwrap_or(s);
            K::lookup(Package::Keyword, &lower(name))
        }
        _ => None,
    }?;
    keys.iter().copied().find(|(k, _)| *k == known)
}

/// §6 step 2, §14 step 3: checks a text for a key of `shape`, at most `max_text` bytes (icons:
/// at most `max_icon` bytes of image); the reason it is refused. The
/// empty string is always accepted: it unsets the key.
pub(crate) fn check_value(
    shape: Shape,
    text: &str,
    max_text: usize,
    max_icon: usize,
) -> Result<(), String> {
    if text.is_empty() {
        return Ok(());
    }
    if shape == Shape::Icon {
        return check_icon(text, max_icon);
    }
    if text.len() > max_text {
        return Err(format!(
            "The text has {} bytes; this key holds at most {max_text}.",
            text.len()
        ));
    }
    let bad_char = |c: char| match shape {
        Shape::Text => c.is_control() && !matches!(c, '\n' | '\r' | '\t'),
        Shape::Url => c.is_control() || c.is_whitespace(),
        _ => c.is_control(),
    };
    if text.chars().any(bad_char) {
        return Err(match shape {
            Shape::Url => "A URL may not contain white space or control characters.".into(),
            Shape::Text => "The text may not contain control characters but line breaks and tabs."
                .into(),
            _ => "This key holds one line: no line breaks or control characters.".into(),
        });
    }
    if shape == Shape::Url {
        let scheme = text.split_once(':').map(|(s, rest)| (s, rest.is_empty()));
        let ok = scheme.is_some_and(|(s, empty)| {
            !empty
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        });
        if !ok {
            return Err("A URL must start with its scheme, as in https://example.org/.".into());
        }
    }
    Ok(())
}

/// §6, §14: the value of a key in an association list `((:key "text") ...)`.
pub(crate) fn alist_get(alist: Option<&Value>, key: K) -> Option<&str> {
    alist?
        .as_list()?
        .iter()
        .filter_map(Value::as_list)
        .find(|pair| pair.first() == Some(&Value::sym(key)))
        .and_then(|pair| pair.get(1))
        .and_then(Value::as_str)
}

/// §6 step 3, §14 step 4: the association list with `key` set to `text` (removed when empty),
/// keeping the order of the other keys.
pub(crate) fn alist_with(alist: Option<&Value>, key: K, text: &str) -> Value {
    let mut pairs: Vec<Value> = alist
        .and_then(Value::as_list)
        .unwrap_or(&[])
        .iter()
        .filter(|pair| pair.as_list().and_then(<[Value]>::first) != Some(&Value::sym(key)))
        .cloned()
        .collect();
    if !text.is_empty() {
        pairs.push(Value::List(vec![Value::sym(key), Value::string(text)]));
    }
    Value::List(pairs)
}

impl Engine {
    /// §6 the value of a channel's info key; the empty string when unset.
    fn channel_info_value(&self, chan: ChanId, key: K) -> &str {
        let data = &self.state.channel(chan).data;
        if key == K::KIcon {
            data.get(ICON_DATA).and_then(Value::as_str).unwrap_or("")
        } else {
            alist_get(data.get(INFO_DATA), key).unwrap_or("")
        }
    }
}

/// §6 `channel-info` steps 1.1–1.2: per key asked for, its value as a
/// `set-channel-info`, or `no-such-channel-info`. Every key is answered
/// once however often it is named; `keys T` (or none) asks for all.
fn channel_info(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let mut known: Vec<K> = Vec::new();
    let mut unknown: Vec<Value> = Vec::new();
    match req.update.get(K::KKeys) {
        None | Some(&Value::T) => known.extend(KEYS.iter().map(|(k, _)| *k)),
        Some(Value::List(keys)) => {
            if keys.len() > MAX_KEYS {
                return Err(Failure::new(
                    K::MalformedUpdate,
                    format!("A channel-info may ask for at most {MAX_KEYS} keys."),
                ));
            }
            for key in keys {
                match find_key(KEYS, key, false) {
                    Some((k, _)) if !known.contains(&k) => known.push(k),
                    Some(_) => {}
                    None if !unknown.contains(key) => unknown.push(key.clone()),
                    None => {}
                }
            }
        }
        Some(_) => {
            return Err(Failure::new(
                K::MalformedUpdate,
                "The :keys of channel-info must be T or a list of keys.",
            ));
        }
    }
    let name = engine.state.channel(chan).name.clone();
    for key in unknown {
        let text = format!("The channel info key {key:?} does not exist.");
        let mut f = engine.failure(K::SNoSuchChannelInfo, Some(req.id()), text, req.now);
        f.push(K::KKey, key);
        send_to(out, req.conn, &f);
    }
    for key in known {
        let reply = Object::new(K::SSetChannelInfo)
            .with(K::KId, req.id())
            .with(K::KClock, req.now)
            .with(K::KFrom, engine.config.name.as_str())
            .with(K::KChannel, name.as_str())
            .with(K::KKey, key)
            .with(K::KText, engine.channel_info_value(chan, key));
        send_to(out, req.conn, &reply);
    }
    Ok(())
}

/// §6 `set-channel-info` steps 1–4. The change is stored with the
/// channel; what went out waits for its commit (`undo.rs`).
fn set_channel_info(
    engine: &mut Engine,
    req: &mut Request,
    out: &mut Outbox,
) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let key = req.update.get(K::KKey).cloned().unwrap_or(Value::NIL);
    // Step 1.
    let Some((key, shape)) = find_key(KEYS, &key, false) else {
        let text = format!("The server has no channel info key {key:?}.");
        let mut f = engine.failure(K::SNoSuchChannelInfo, Some(req.id()), text, req.now);
        f.push(K::KKey, key);
        send_to(out, req.conn, &f);
        return Ok(());
    };
    // Step 2.
    let text = req.str_field(K::KText).unwrap_or_default().to_owned();
    let (max_text, max_icon) = (engine.config.max_channel_info_size, engine.config.max_icon_size);
    check_value(shape, &text, max_text, max_icon)
        .map_err(|why| Failure::new(K::SMalformedChannelInfo, why))?;
    // Step 3.
    let stored = {
        let c = engine.state.channel(chan);
        !c.anonymous && chan != engine.state.primary
    };
    if stored {
        engine.refuse_while_store_fails()?;
    }
    let (ext, value) = if key == K::KIcon {
        let icon = if text.is_empty() {
            Value::NIL
        } else {
            Value::String(text)
        };
        (ICON_DATA, icon)
    } else {
        let info = engine.state.channel(chan).data.get(INFO_DATA);
        (INFO_DATA, alist_with(info, key, &text))
    };
    let before = engine.set_channel_data(chan, ext, value, out);
    // Step 4, and to the sender also when it is not in the channel.
    req.update.set(K::KKey, key);
    let first = out.sends.len();
    engine.distribute(req, out)?;
    if !engine.state.in_channel(req.user, chan) {
        send_to(out, req.conn, &Engine::echo(req));
    }
    engine.confirm_channel_data(out, first, req, chan, ext, before);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_info_6_values_are_checked_by_shape() {
        let ok = |shape, text: &str| check_value(shape, text, 64, 64).is_ok();
        assert!(ok(Shape::Line, "A title"));
        assert!(!ok(Shape::Line, "two\nlines"));
        assert!(ok(Shape::Text, "Rule one.\n\tRule two.\r\n"));
        assert!(!ok(Shape::Text, "bell\u{7}"));
        assert!(ok(Shape::Url, "https://example.org/x?y=1"));
        assert!(ok(Shape::Url, "mailto:ann@example.org"));
        assert!(!ok(Shape::Url, "example.org"));
        assert!(!ok(Shape::Url, "https://exa mple.org"));
        assert!(!ok(Shape::Url, "1http://x"));
        assert!(!ok(Shape::Url, "https:"));
        assert!(ok(Shape::Line, ""), "the empty string unsets");
        assert!(!ok(Shape::Text, &"x".repeat(65)));
        assert!(ok(Shape::Text, &"x".repeat(64)));
    }

    #[test]
    fn channel_info_6_alist_sets_replaces_and_removes() {
        let a = alist_with(None, K::KTitle, "One");
        let a = alist_with(Some(&a), K::KTopic, "Two");
        let a = alist_with(Some(&a), K::KTitle, "Three");
        assert_eq!(alist_get(Some(&a), K::KTitle), Some("Three"));
        assert_eq!(alist_get(Some(&a), K::KTopic), Some("Two"));
        let a = alist_with(Some(&a), K::KTitle, "");
        assert_eq!(alist_get(Some(&a), K::KTitle), None);
        assert_eq!(a.as_list().map(<[Value]>::len), Some(1));
    }
}
