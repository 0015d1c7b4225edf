//! shirakumo-otp (§24 of `shirakumo.mess`): one-time passwords for a
//! registered profile. The key is a TOTP secret (RFC 6238: HMAC-SHA-1,
//! six digits, 30-second steps) in base 32, as authenticator apps take it;
//! `register` with a non-empty `otp-key` sets it, with an empty one
//! removes it. A profile with a key needs, past its password (§4.1.7), an
//! `otp-token` on `connect` of the current step or the one before or after
//! (for clocks a little apart); a code is accepted once, so a code seen by
//! someone else cannot log in again. A wrong or missing code is
//! `invalid-password`, like a wrong password.
//!
//! The key is kept with the profile (its [`crate::engine::ExtData`]).

use crate::engine::registry::{Extension, Hooks};
use crate::engine::{Engine, Failure, Time, UNIX_TO_UNIVERSAL};
use crate::protocol::{NameKey, Ty, name_key, opt};
use crate::wire::{Known as K, Object, Value};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use std::collections::HashMap;

/// The key of the OTP secret in a profile's [`crate::engine::ExtData`].
const KEY: &str = "shirakumo-otp";

/// RFC 6238 time step, in seconds.
const STEP: u64 = 30;

/// Digits of a code.
const DIGITS: u32 = 6;

/// Shortest secret accepted, in bytes: 80 bits, what authenticator apps
/// make (16 base 32 characters).
const MIN_SECRET: usize = 10;

/// Longest secret accepted, in bytes: one HMAC-SHA-1 block.
const MAX_SECRET: usize = 64;

/// §24: the `otp-key` of `register`, the `otp-token` of `connect`.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-otp"],
    hooks: Hooks::NONE,
    fields: &[
        (K::Connect, opt(K::KOtpToken, Ty::Str)),
        (K::Register, opt(K::KOtpKey, Ty::Str)),
    ],
    classes: &[],
};

/// The last step whose code logged each profile in, so that no code
/// serves twice (RFC 6238 §5.2).
#[derive(Default)]
struct Used(HashMap<NameKey, u64>);

/// `shirakumo.mess` §24: decodes an `otp-key`, base 32 (RFC 4648, any case; spaces, hyphens and `=` padding
/// are ignored); `None` for any other character. Bits past the last
/// whole byte are dropped.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            b' ' | b'-' | b'=' => continue,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `shirakumo.mess` §24: the HOTP value (RFC 4226 §5.3) of `secret` at `counter`, `digits`
/// long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(secret) else {
        // HMAC takes keys of any length.
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let code = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    code % 10u32.pow(digits)
}

/// `shirakumo.mess` §24: the TOTP value (RFC 6238) of `secret` at Unix time `unix`: SHA-1,
/// 30-second steps from 0, `digits` long.
pub fn totp(secret: &[u8], unix: u64, digits: u32) -> u32 {
    hotp(secret, unix / STEP, digits)
}

/// The secret of a key as §24 `otp-key` carries it, or why it is none.
fn secret_of(key: &str) -> Result<Vec<u8>, String> {
    let secret = base32_decode(key)
        .ok_or("an otp-key is a TOTP secret in base 32 (letters A-Z and digits 2-7)")?;
    if secret.len() < MIN_SECRET || secret.len() > MAX_SECRET {
        return Err(format!(
            "a TOTP secret has {MIN_SECRET} to {MAX_SECRET} bytes \
             ({} to {} base 32 characters)",
            MIN_SECRET * 8 / 5,
            MAX_SECRET * 8 / 5
        ));
    }
    Ok(secret)
}

/// §24 register step 1.2: a `register` whose `otp-key` is not a valid key
/// fails with `invalid-otp-key` before anything changes.
pub(crate) fn check_register(update: &Object) -> Result<(), Failure> {
    match update.get(K::KOtpKey).and_then(Value::as_str) {
        Some(key) if !key.is_empty() => secret_of(key)
            .map(|_| ())
            .map_err(|e| Failure::new(K::SInvalidOtpKey, format!("Invalid otp-key: {e}."))),
        _ => Ok(()),
    }
}

/// §24 register step 1, once the `register` succeeds: stores the key of
/// the profile `name` (in a canonical spelling), or removes it for an
/// empty one. The caller records the profile's change.
pub(crate) fn registered(engine: &mut Engine, name: &str, update: &Object) {
    let Some(key) = update.get_raw(K::KOtpKey).and_then(Value::as_str) else {
        return;
    };
    let value = if key.is_empty() {
        Value::NIL
    } else {
        let canonical: String = key
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '='))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        Value::string(canonical)
    };
    if let Some(p) = engine.state.find_profile_mut(name) {
        p.data.set(KEY, value);
    }
}

/// §24 connect: after the password of `name` was verified (§4.1.7), the
/// `otp-token` must be a current code of its key, if it has one, and not
/// one that logged in before.
pub(crate) fn verify(
    engine: &mut Engine,
    name: &str,
    update: &Object,
    now: Time,
) -> Result<(), Failure> {
    let Some(key) = engine
        .state
        .find_profile(name)
        .and_then(|p| p.data.get(KEY))
        .and_then(Value::as_str)
    else {
        return Ok(());
    };
    let refused = |text: &str| Failure::new(K::InvalidPassword, text);
    let Ok(secret) = secret_of(key) else {
        log::warn!("the stored OTP key of {name:?} is not valid");
        return Err(refused("The one-time password cannot be checked."));
    };
    let token: String = update
        .get(K::KOtpToken)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if token.is_empty() {
        return Err(refused("This profile needs a one-time password (otp-token)."));
    }
    let given = match token.parse::<u32>() {
        Ok(n) if token.len() == DIGITS as usize && token.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(refused("The one-time password does not match.")),
    };
    let step = now.saturating_sub(UNIX_TO_UNIVERSAL) / STEP;
    let last = engine
        .state
        .volatile
        .get::<Used>()
        .and_then(|u| u.0.get(&name_key(name)).copied());
    let mut matched = None;
    for s in [step.saturating_sub(1), step, step + 1] {
        // Every candidate is computed and compared, so that the time
        // taken tells nothing of which one matched.
        let same = hotp(&secret, s, DIGITS) == given;
        if same && last.is_none_or(|l| s > l) && matched.is_none() {
            matched = Some(s);
        }
    }
    let Some(s) = matched else {
        return Err(refused("The one-time password does not match."));
    };
    engine
        .state
        .volatile
        .get_or_default::<Used>()
        .0
        .insert(name_key(name), s);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_decodes_rfc_4648_test_vectors() {
        assert_eq!(base32_decode("").unwrap(), b"");
        assert_eq!(base32_decode("MY======").unwrap(), b"f");
        assert_eq!(base32_decode("MZXQ====").unwrap(), b"fo");
        assert_eq!(base32_decode("MZXW6===").unwrap(), b"foo");
        assert_eq!(base32_decode("MZXW6YQ=").unwrap(), b"foob");
        assert_eq!(base32_decode("MZXW6YTB").unwrap(), b"fooba");
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW 6YTB-OI").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW1"), None);
    }

    #[test]
    fn hotp_matches_rfc_4226_appendix_d() {
        let secret = b"12345678901234567890";
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64, 6), *code, "counter {counter}");
        }
    }
}
