//! shirakumo-icons (§16 of `shirakumo.mess`): an `:icon` key for channel
//! info (§6) and user info (§14), whose value is an image as
//! `content-type base64`. The server takes PNG, GIF, JPEG and WebP
//! images up to `--max-icon-size` bytes, and checks that the image
//! starts as its content type says. An icon is kept apart from the other
//! info keys, under this extension's name, so that changing a text key
//! never copies it.

use crate::engine::registry::{Extension, Hooks};
use crate::protocol::payload::{base64_len, split_typed_base64};

/// §16: the key is added to §6 and §14; both spellings are advertised
/// (`shirakumo-icon` is how clients and other servers write it).
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-icons", "shirakumo-icon"],
    hooks: Hooks::NONE,
    fields: &[],
    classes: &[],
};

/// §16: the name icons are kept under in a channel's or profile's
/// extension data.
pub(crate) const ICON_DATA: &str = "shirakumo-icons";

/// §16: the content types accepted, each with the bytes its images start
/// with (`None` stands for any byte).
const TYPES: &[(&str, &[Option<u8>])] = &[
    (
        "image/png",
        &[
            Some(0x89),
            Some(b'P'),
            Some(b'N'),
            Some(b'G'),
            Some(0x0d),
            Some(0x0a),
            Some(0x1a),
            Some(0x0a),
        ],
    ),
    ("image/gif", &[Some(b'G'), Some(b'I'), Some(b'F'), Some(b'8')]),
    ("image/jpeg", &[Some(0xff), Some(0xd8), Some(0xff)]),
    (
        "image/webp",
        &[
            Some(b'R'),
            Some(b'I'),
            Some(b'F'),
            Some(b'F'),
            None,
            None,
            None,
            None,
            Some(b'W'),
            Some(b'E'),
            Some(b'B'),
            Some(b'P'),
        ],
    ),
];

/// §16: checks an icon value, `content-type base64`, against the
/// accepted types and the size limit; the reason it is refused.
pub(crate) fn check_icon(value: &str, max_bytes: usize) -> Result<(), String> {
    let Some((ty, data)) = split_typed_base64(value) else {
        return Err(
            "An icon must be its content type, a space and the image in base 64.".into(),
        );
    };
    let Some((_, magic)) = TYPES.iter().find(|(t, _)| t.eq_ignore_ascii_case(ty)) else {
        return Err(format!(
            "Icons of type {ty} are not accepted; send image/png, image/gif, image/jpeg or image/webp."
        ));
    };
    let len = base64_len(data).unwrap_or(0);
    if len > max_bytes {
        return Err(format!(
            "The icon has {len} bytes; icons may have at most {max_bytes}."
        ));
    }
    let head = decode_head(data);
    let starts_right = head.len() >= magic.len()
        && magic
            .iter()
            .zip(&head)
            .all(|(m, b)| m.is_none_or(|m| m == *b));
    if !starts_right {
        return Err(format!("The icon's data is not a {ty} image."));
    }
    Ok(())
}

/// The first (up to) 12 bytes of valid base 64.
fn decode_head(data: &str) -> Vec<u8> {
    let digit = |b: u8| match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(12);
    for group in data.as_bytes().chunks(4).take(4) {
        let digits: Vec<u8> = group.iter().map_while(|&b| digit(b)).collect();
        let n = digits
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &d)| n | u32::from(d) << (18 - 6 * i));
        let bytes = digits.len().saturating_sub(1);
        for i in 0..bytes {
            out.push((n >> (16 - 8 * i)) as u8);
        }
        if bytes < 3 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::payload::base64_encode;

    fn icon(ty: &str, bytes: &[u8]) -> String {
        format!("{ty} {}", base64_encode(bytes))
    }

    #[test]
    fn icons_16_png_gif_jpeg_webp_are_accepted() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(check_icon(&icon("image/png", png), 100), Ok(()));
        assert_eq!(check_icon(&icon("IMAGE/PNG", png), 100), Ok(()));
        assert_eq!(check_icon(&icon("image/gif", b"GIF89a\x01\0"), 100), Ok(()));
        assert_eq!(check_icon(&icon("image/jpeg", b"\xff\xd8\xff\xe0"), 100), Ok(()));
        assert_eq!(
            check_icon(&icon("image/webp", b"RIFF\x10\0\0\0WEBPVP8 "), 100),
            Ok(())
        );
    }

    #[test]
    fn icons_16_bad_shape_type_data_or_size_is_refused() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        for bad in [
            String::new(),
            "image/png".into(),
            "image/png not-base64!".into(),
            icon("text/plain", b"hello"),
            icon("image/svg+xml", b"<svg/>"),
            icon("image/gif", png),
            icon("image/png", b"\x89PN"),
        ] {
            assert!(check_icon(&bad, 100).is_err(), "{bad:?}");
        }
        assert!(check_icon(&icon("image/png", png), png.len() - 1).is_err());
        assert_eq!(check_icon(&icon("image/png", png), png.len()), Ok(()));
    }

    #[test]
    fn decode_head_reads_the_first_bytes() {
        assert_eq!(decode_head(&base64_encode(b"foobar")), b"foobar");
        assert_eq!(decode_head(&base64_encode(b"fo")), b"fo");
        assert_eq!(decode_head(&base64_encode(&[7; 40])), [7; 12]);
    }
}
