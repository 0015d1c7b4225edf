//! Binary payloads carried as text: the base-64 strings of `data`,
//! `emote` and `link` (§2, §3, §12 of `shirakumo.mess`) and the
//! `content-type base64` values of icons (§16).

/// The standard base-64 alphabet (RFC 4648 §4).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The value of a base-64 digit, or `None` for any other byte.
fn digit(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// The number of bytes `text` decodes to if it is valid base 64 (RFC 4648
/// §4, padded to a multiple of four, no white space), in one pass and
/// without decoding it.
pub fn base64_len(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let pad = match b {
        [.., b'=', b'='] => 2,
        [.., b'='] => 1,
        _ => 0,
    };
    let body = &b[..b.len() - pad];
    if !body.iter().all(|&c| digit(c).is_some()) {
        return None;
    }
    // The bits a padded group leaves over must be zero (canonical form).
    if let Some(&last) = body.last() {
        let v = digit(last).unwrap_or(0);
        let unused = match pad {
            1 => v & 0b11,
            2 => v & 0b1111,
            _ => 0,
        };
        if unused != 0 {
            return None;
        }
    }
    Some(b.len() / 4 * 3 - pad)
}

/// True if `text` is valid base 64.
pub fn is_base64(text: &str) -> bool {
    base64_len(text).is_some()
}

/// Base 64 of `bytes`, padded (RFC 4648 §4).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes of valid base 64 (as [`base64_len`] accepts it), or `None`
/// (§2 payloads stored by §12 link).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let len = base64_len(text)?;
    let mut out = Vec::with_capacity(len);
    for group in text.as_bytes().chunks(4) {
        let n = group.iter().enumerate().fold(0u32, |n, (i, &c)| {
            n | u32::from(digit(c).unwrap_or(0)) << (18 - 6 * i)
        });
        out.extend_from_slice(&n.to_be_bytes()[1..]);
    }
    out.truncate(len);
    Some(out)
}

/// An inline image or file value, `content-type base64` (§16): its
/// content type and the base-64 text, if the value has that shape and
/// the text is valid base 64.
pub fn split_typed_base64(value: &str) -> Option<(&str, &str)> {
    let (ty, data) = value.split_once(' ')?;
    (is_content_type(ty) && is_base64(data)).then_some((ty, data))
}

/// True for a plausible media type, `type/subtype` in the token
/// characters of RFC 9110 §5.6.2 (parameters are not accepted).
pub fn is_content_type(ty: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    matches!(ty.split_once('/'), Some((a, b)) if token(a) && token(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decode_inverts_encode_and_refuses_bad_text() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)), Some(bytes));
        }
        assert_eq!(base64_decode("Zm9vYg=="), Some(b"foob".to_vec()));
        assert_eq!(base64_decode("Zm9vYh=="), None);
        assert_eq!(base64_decode("Zm9"), None);
        assert_eq!(base64_decode("Zm 9v"), None);
    }

    #[test]
    fn base64_rfc4648_test_vectors_round_trip() {
        // RFC 4648 §10.
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_len(encoded), Some(plain.len()), "{encoded}");
        }
    }

    #[test]
    fn base64_rejects_bad_length_alphabet_padding_and_spare_bits() {
        for bad in [
            "Zg=", "Zm9", "Zm9v\n", "Zm 9", "Z===", "=Zm9", "Zh==", "Zm9=", "Zm-_",
        ] {
            assert!(!is_base64(bad), "{bad:?}");
        }
    }

    #[test]
    fn typed_base64_needs_a_content_type_and_valid_data() {
        assert_eq!(
            split_typed_base64("image/png Zm9v"),
            Some(("image/png", "Zm9v"))
        );
        assert_eq!(split_typed_base64("image/png"), None);
        assert_eq!(split_typed_base64("png Zm9v"), None);
        assert_eq!(split_typed_base64("image/png Zm9"), None);
        assert!(is_content_type("application/vnd.oasis.opendocument.text"));
        assert!(!is_content_type("image/png; charset=x"));
    }
}
