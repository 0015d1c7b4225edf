//! shirakumo-shared-identity (§15 of `shirakumo.mess`): a registered user
//! lends its name through keys; another registered user who redeems one
//! may send updates whose `from` is the lender's name.
//!
//! Each profile keeps its lending map (at most [`MAX_SHARES`] keys, each
//! with the name that redeemed it, if any) and its identities list, with
//! the profile. An update on behalf of a lender goes through as its
//! sender's own in every other respect: the sender's channels and
//! permissions apply, so that borrowing a name lends no rights, and only
//! `from` shows the lender. The lender's map is what counts: a key it
//! withdrew, or a lender whose profile is gone, lends nothing, whatever
//! the borrower's list still says.

use crate::engine::random::random_hex;
use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::state::UserId;
use crate::engine::{Engine, Failure, Outbox, Request, send_to};
use crate::protocol::{Ty, names_equal, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Value};

/// The key of the shares in a profile's [`crate::engine::ExtData`].
const KEY: &str = "shirakumo-shared-identity";

/// Keys one profile lends at most (§15 `share-identity` step 2).
pub(crate) const MAX_SHARES: usize = 10;

/// §15: identities one profile may hold at most (each checked, name by name,
/// when it sends an update as another).
pub(crate) const MAX_IDENTITIES: usize = 100;

/// Random bytes in a key: 32 hexadecimal characters (§15 asks for 16 at
/// least).
const KEY_BYTES: usize = 16;

const ANYONE: Defaults = Defaults {
    primary: R::Anyone,
    regular: R::Unset,
    anonymous: R::Unset,
};

/// §15: `share-identity`, `unshare-identity`, `list-shared-identities`,
/// `assume-identity` and the `from` check.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-shared-identity"],
    hooks: Hooks::NONE,
    fields: &[],
    classes: &[
        ClassDef {
            class: K::SShareIdentity,
            fields: update_fields!(opt(K::KKey, Ty::Str)),
            handler: share,
            checks: Checks::SERVER,
            rules: ANYONE,
        },
        ClassDef {
            class: K::SUnshareIdentity,
            fields: update_fields!(opt(K::KKey, Ty::Str)),
            handler: unshare,
            checks: Checks::SERVER,
            rules: ANYONE,
        },
        ClassDef {
            class: K::SListSharedIdentities,
            fields: update_fields!(opt(K::KShares, Ty::List), opt(K::KIdentities, Ty::List)),
            handler: list,
            checks: Checks::SERVER,
            rules: ANYONE,
        },
        ClassDef {
            class: K::SAssumeIdentity,
            fields: update_fields!(req(K::KTarget, Ty::Str), req(K::KKey, Ty::Str)),
            handler: assume,
            checks: Checks::SERVER,
            rules: ANYONE,
        },
    ],
};

/// §15 a profile's lending map and identities list.
#[derive(Default)]
struct Shared {
    /// Each key, with the user who redeemed it.
    shares: Vec<(String, Option<String>)>,
    /// The names this profile may send updates as.
    identities: Vec<String>,
}

impl Shared {
    fn of(engine: &Engine, profile: &str) -> Shared {
        engine
            .state
            .find_profile(profile)
            .and_then(|p| p.data.get(KEY))
            .map(Shared::from_value)
            .unwrap_or_default()
    }

    /// As stored: `(((key borrower|NIL) ...) (identity ...))`.
    fn to_value(&self) -> Value {
        if self.shares.is_empty() && self.identities.is_empty() {
            return Value::NIL;
        }
        Value::List(vec![
            Value::List(self.shares.iter().map(share_value).collect()),
            Value::List(
                self.identities
                    .iter()
                    .map(|n| Value::string(n.as_str()))
                    .collect(),
            ),
        ])
    }

    fn from_value(value: &Value) -> Shared {
        let Some([shares, identities]) = value.as_list() else {
            return Shared::default();
        };
        Shared {
            shares: shares
                .as_list()
                .unwrap_or(&[])
                .iter()
                .filter_map(|s| match s.as_list()? {
                    [key, by] => Some((key.as_str()?.to_owned(), by.as_str().map(str::to_owned))),
                    _ => None,
                })
                .take(MAX_SHARES)
                .collect(),
            identities: identities
                .as_list()
                .unwrap_or(&[])
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        }
    }

    fn has_identity(&self, name: &str) -> bool {
        self.identities.iter().any(|n| names_equal(n, name))
    }

    fn drop_identity(&mut self, name: &str) {
        self.identities.retain(|n| !names_equal(n, name));
    }
}

fn share_value((key, by): &(String, Option<String>)) -> Value {
    Value::List(vec![
        Value::string(key.as_str()),
        by.as_deref().map_or(Value::NIL, Value::string),
    ])
}

/// §15 the modified §5.1.5: whether `user` may send an update whose
/// `from` is `from`, another name: its profile lists `from` among its
/// identities and `from`'s profile lends to it by a redeemed key.
pub(crate) fn may_send_as(engine: &Engine, user: UserId, from: &str) -> bool {
    let name = &engine.state.user(user).name;
    let Some(own) = engine.state.find_profile(name).and_then(|p| p.data.get(KEY)) else {
        return false;
    };
    if !Shared::from_value(own).has_identity(from) {
        return false;
    }
    Shared::of(engine, from)
        .shares
        .iter()
        .any(|(_, by)| by.as_deref().is_some_and(|b| names_equal(b, name)))
}

/// Step 1 of each handler: the sender's profile name.
fn profile_of(engine: &Engine, req: &Request) -> Result<String, Failure> {
    let name = engine.state.user(req.user).name.clone();
    match engine.state.find_profile(&name) {
        Some(p) => Ok(p.name.clone()),
        None => Err(Failure::new(
            K::NoSuchProfile,
            "Only registered users share identities.",
        )),
    }
}

fn already_used(text: impl Into<String>) -> Failure {
    Failure::new(K::SIdentityAlreadyUsed, text)
}

/// Stores new shares of several profiles, `changes` in order, confirmed
/// with `reply` to the sending connection once stored.
fn store(
    engine: &mut Engine,
    req: &Request,
    changes: Vec<(String, Shared)>,
    reply: &crate::wire::Object,
    out: &mut Outbox,
) -> Result<(), Failure> {
    engine.refuse_while_store_fails()?;
    let mut before = Vec::with_capacity(changes.len());
    for (name, shared) in changes {
        if let Some(old) = engine.set_profile_data(&name, KEY, shared.to_value(), out) {
            before.push((name, old));
        }
    }
    let first = out.sends.len();
    send_to(out, req.conn, reply);
    engine.confirm_profiles_data(out, first, req, KEY, before);
    Ok(())
}

/// §15 `share-identity` steps 1–4.
fn share(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let name = profile_of(engine, req)?;
    let mut shared = Shared::of(engine, &name);
    if shared.shares.len() >= MAX_SHARES {
        return Err(already_used(format!(
            "You share your identity by {MAX_SHARES} keys already; unshare one first."
        )));
    }
    let Some(key) = random_hex(KEY_BYTES) else {
        return Err(Failure::new(
            K::UpdateFailure,
            "The server cannot get random bytes from its operating system \
             for a key; try again later.",
        ));
    };
    shared.shares.push((key.clone(), None));
    let mut reply = Engine::echo(req);
    reply.set(K::KKey, key);
    store(engine, req, vec![(name, shared)], &reply, out)
}

/// §15 `unshare-identity` steps 1–4.
fn unshare(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let name = profile_of(engine, req)?;
    let mut shared = Shared::of(engine, &name);
    let withdrawn: Vec<(String, Option<String>)> = match req.str_field(K::KKey) {
        // Step 2: every key.
        None => std::mem::take(&mut shared.shares),
        // Step 3: that key.
        Some(key) => match shared.shares.iter().position(|(k, _)| k == key) {
            Some(i) => vec![shared.shares.remove(i)],
            None => return Err(already_used("You share your identity by no such key.")),
        },
    };
    let mut changes = vec![(name.clone(), shared)];
    for borrower in withdrawn.into_iter().filter_map(|(_, by)| by) {
        if names_equal(&borrower, &name) || engine.state.find_profile(&borrower).is_none() {
            continue;
        }
        match changes.iter_mut().find(|(n, _)| names_equal(n, &borrower)) {
            Some((_, s)) => s.drop_identity(&name),
            None => {
                let mut theirs = Shared::of(engine, &borrower);
                theirs.drop_identity(&name);
                changes.push((borrower, theirs));
            }
        }
    }
    let reply = Engine::echo(req);
    store(engine, req, changes, &reply, out)
}

/// §15 `list-shared-identities` steps 1–3.
fn list(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let name = profile_of(engine, req)?;
    let shared = Shared::of(engine, &name);
    let mut reply = Engine::echo(req);
    reply.set(
        K::KShares,
        Value::List(shared.shares.iter().map(share_value).collect()),
    );
    reply.set(
        K::KIdentities,
        Value::List(
            shared
                .identities
                .iter()
                .map(|n| Value::string(n.as_str()))
                .collect(),
        ),
    );
    send_to(out, req.conn, &reply);
    Ok(())
}

/// §15 `assume-identity` steps 1–5.
fn assume(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let name = profile_of(engine, req)?;
    let target = req.str_field(K::KTarget).unwrap_or_default().to_owned();
    let key = req.str_field(K::KKey).unwrap_or_default().to_owned();
    let mut own = Shared::of(engine, &name);
    // Step 2.
    if names_equal(&target, &name) || own.has_identity(&target) {
        return Err(already_used(format!(
            "You may send updates as {target:?} already."
        )));
    }
    if own.identities.len() >= MAX_IDENTITIES {
        return Err(already_used(format!(
            "You may send updates as {MAX_IDENTITIES} others already."
        )));
    }
    // Step 3.
    let Some(lender) = engine.state.find_profile(&target).map(|p| p.name.clone()) else {
        return Err(already_used(format!("{target:?} shares no identity.")));
    };
    let mut theirs = Shared::of(engine, &lender);
    let Some(slot) = theirs
        .shares
        .iter_mut()
        .find(|(k, by)| *k == key && by.is_none())
    else {
        return Err(already_used(
            "The key is not one of theirs, or it has been used already.",
        ));
    };
    // Step 4.
    slot.1 = Some(name.clone());
    own.identities.push(lender.clone());
    // Step 5.
    let mut reply = Engine::echo(req);
    reply.set(K::KTarget, lender.as_str());
    store(engine, req, vec![(lender, theirs), (name, own)], &reply, out)
}
