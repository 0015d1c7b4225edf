//! shirakumo-user-info (§14 of `shirakumo.mess`): a registered profile
//! keeps a table of metadata under the keys `:birthday :contact
//! :location :public-key :real-name :status` (and `:icon`, §16), which its
//! user sets with `set-user-info` and anyone reads in the `info` field of
//! `user-info`. The text keys are kept together, as one association list,
//! under this extension's name in the profile's extension data; the icon
//! apart (`icons.rs`). Both are stored with the profile and expire with it.

use super::channel_info::{Shape, alist_get, alist_with, check_value, find_key};
use super::icons::ICON_DATA;
use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::{Engine, Failure, Outbox, Request};
use crate::protocol::{Ty, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Value};

/// The name the text keys are kept under in a profile's extension data.
const INFO_DATA: &str = "shirakumo-user-info";

/// §14: `set-user-info`, and the `info` field of `user-info`.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-user-info"],
    hooks: Hooks::NONE,
    fields: &[(K::UserInfo, opt(K::KInfo, Ty::List))],
    classes: &[ClassDef {
        class: K::SSetUserInfo,
        // The key is a symbol in the prose of §14 and a string in
        // `shirakumo.sexpr`: both are taken.
        fields: update_fields!(req(K::KKey, Ty::Id), req(K::KText, Ty::Str)),
        handler: set_user_info,
        // About oneself only: checked against the primary channel.
        checks: Checks::SERVER,
        rules: Defaults {
            primary: R::Anyone,
            regular: R::Unset,
            anonymous: R::Unset,
        },
    }],
};

/// §14 the keys, in the order `info` lists them, with their shape.
const KEYS: &[(K, Shape)] = &[
    (K::KBirthday, Shape::Line),
    (K::KContact, Shape::Text),
    (K::KLocation, Shape::Line),
    (K::KPublicKey, Shape::Text),
    (K::KRealName, Shape::Line),
    (K::KStatus, Shape::Line),
    (K::KIcon, Shape::Icon),
];

impl Engine {
    /// §14 `user-info` steps 1–2: the `info` field for the user `name`,
    /// `((:key "value") ...)` of the keys set on its profile; `None` when
    /// it has no profile.
    pub(crate) fn user_info_field(&self, name: &str) -> Option<Value> {
        let p = self.state.find_profile(name)?;
        let info = p.data.get(INFO_DATA);
        let mut pairs: Vec<Value> = KEYS
            .iter()
            .filter_map(|&(k, _)| {
                let text = alist_get(info, k)?;
                Some(Value::List(vec![Value::sym(k), Value::string(text)]))
            })
            .collect();
        if let Some(icon) = p.data.get(ICON_DATA).and_then(Value::as_str) {
            pairs.push(Value::List(vec![Value::sym(K::KIcon), Value::string(icon)]));
        }
        Some(Value::List(pairs))
    }
}

/// §14 `set-user-info` steps 1–5. The change is stored with the profile;
/// the reply waits for its commit (`undo.rs`) and goes to every
/// connection of the user.
fn set_user_info(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let name = engine.state.user(req.user).name.clone();
    // Step 1.
    if engine.state.find_profile(&name).is_none() {
        return Err(Failure::new(
            K::NoSuchProfile,
            format!("{name:?} is not registered: only registered users have user info."),
        ));
    }
    // Step 2.
    let key = req.update.get(K::KKey).cloned().unwrap_or(Value::NIL);
    let Some((key, shape)) = find_key(KEYS, &key, true) else {
        let text = format!("The server has no user info key {key:?}.");
        let mut f = engine.failure(K::SNoSuchUserInfo, Some(req.id()), text, req.now);
        f.push(K::KKey, key);
        crate::engine::send_to(out, req.conn, &f);
        return Ok(());
    };
    // Step 3.
    let text = req.str_field(K::KText).unwrap_or_default().to_owned();
    let (max_text, max_icon) = (engine.config.max_user_info_size, engine.config.max_icon_size);
    check_value(shape, &text, max_text, max_icon)
        .map_err(|why| Failure::new(K::SMalformedUserInfo, why))?;
    // Step 4.
    engine.refuse_while_store_fails()?;
    let (ext, value) = if key == K::KIcon {
        let icon = if text.is_empty() {
            Value::NIL
        } else {
            Value::String(text)
        };
        (ICON_DATA, icon)
    } else {
        let info = engine
            .state
            .find_profile(&name)
            .and_then(|p| p.data.get(INFO_DATA));
        (INFO_DATA, alist_with(info, key, &text))
    };
    let Some(before) = engine.set_profile_data(&name, ext, value, out) else {
        return Err(Failure::new(K::NoSuchProfile, "The profile is gone."));
    };
    // Step 5.
    req.update.set(K::KKey, key);
    let first = out.sends.len();
    engine.send_user(out, req.user, &Engine::echo(req));
    engine.confirm_profile_data(out, first, req, &name, ext, before);
    Ok(())
}
