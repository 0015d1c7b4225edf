//! shirakumo-data (§2 of `shirakumo.mess`): a member sends a file (an
//! image, a sound, a document) to its channel as a base-64 payload with a
//! content type the server accepts (`--data-types`).

use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::{Engine, Failure, Outbox, Request, send_to};
use crate::protocol::payload::is_base64;
use crate::protocol::{Ty, opt, req};
use crate::update_fields;
use crate::wire::{Known as K, Value};

/// §2: the `data` update and its `bad-content-type` failure.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-data"],
    hooks: Hooks::NONE,
    fields: &[],
    classes: &[ClassDef {
        class: K::SData,
        fields: update_fields!(
            req(K::KChannel, Ty::Str),
            req(K::KContentType, Ty::Str),
            opt(K::KFilename, Ty::Str),
            req(K::KPayload, Ty::Str),
        ),
        handler: data,
        // Step 1: not-in-channel for outsiders.
        checks: Checks::MEMBER,
        // Like `message`: members of a channel, the server user in the
        // primary channel.
        rules: Defaults {
            primary: R::Registrant,
            regular: R::Anyone,
            anonymous: R::Anyone,
        },
    }],
};

/// The content types `--data-types` accepts by default (§2 step 2).
pub const DEFAULT_DATA_TYPES: &[&str] = &[
    "image/png",
    "image/gif",
    "image/jpeg",
    "image/webp",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "video/mp4",
    "video/webm",
    "text/plain",
    "application/pdf",
];

/// §2 steps 2–3.
fn data(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let ty = req.str_field(K::KContentType).unwrap_or_default();
    if !accepts(&engine.config.data_types, ty) {
        let allowed = engine.config.data_types.clone();
        send_bad_content_type(engine, req, ty, &allowed, out);
        return Ok(());
    }
    if !is_base64(req.str_field(K::KPayload).unwrap_or_default()) {
        return Err(Failure::new(
            K::MalformedUpdate,
            "The :payload of data must be base-64 text (RFC 4648, padded, no white space).",
        ));
    }
    // shirakumo-link §12: saved and linked instead of distributed.
    if super::link::enabled(engine) {
        return super::link::share(engine, req, out);
    }
    engine.distribute(req, out)
}

/// §2 step 2: true if `ty` is among `accepted`; media types compare without case
/// and without parameters (`text/plain; charset=utf-8` is `text/plain`).
pub(crate) fn accepts(accepted: &[String], ty: &str) -> bool {
    let essence = ty.split(';').next().unwrap_or_default().trim();
    accepted.iter().any(|a| a.eq_ignore_ascii_case(essence))
}

/// §2 step 2, §3 step 3: the `bad-content-type` failure, whose
/// `allowed-content-types` (and text) list what the server accepts.
pub(crate) fn send_bad_content_type(
    engine: &mut Engine,
    req: &Request,
    ty: &str,
    allowed: &[String],
    out: &mut Outbox,
) {
    let text = format!(
        "The content type {ty:?} is not accepted here; accepted are: {}.",
        allowed.join(", ")
    );
    let mut f = engine.failure(K::SBadContentType, Some(req.id()), text, req.now);
    f.push(
        K::KAllowedContentTypes,
        Value::List(allowed.iter().map(|t| Value::string(t.as_str())).collect()),
    );
    send_to(out, req.conn, &f);
}
