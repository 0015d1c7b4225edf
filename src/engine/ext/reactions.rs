//! shirakumo-reactions (§20 of `shirakumo.mess`): a member reacts to a
//! message of the channel with an emoji, or with the name of one of the
//! channel's emotes (§3).

use crate::engine::registry::{Checks, ClassDef, DefaultRule as R, Defaults, Extension, Hooks};
use crate::engine::{Engine, Failure, Outbox, Request};
use crate::protocol::{Ty, req};
use crate::update_fields;
use crate::wire::Known as K;

/// §20: the `react` update.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-reactions"],
    hooks: Hooks::NONE,
    fields: &[],
    classes: &[ClassDef {
        class: K::SReact,
        fields: update_fields!(
            req(K::KChannel, Ty::Str),
            req(K::KTarget, Ty::Str),
            req(K::KUpdateId, Ty::Id),
            req(K::KEmote, Ty::Str),
        ),
        handler: react,
        // Step 1: not-in-channel for outsiders.
        checks: Checks::MEMBER,
        rules: Defaults {
            primary: R::Registrant,
            regular: R::Anyone,
            anonymous: R::Anyone,
        },
    }],
};

/// Longest emoji sequence accepted, in characters (a family of four with
/// joiners and skin tones is 11).
const MAX_EMOJI_CHARS: usize = 32;

/// §20 steps 2–3: an emoji, or the name of an emote (§3) of the channel
/// or of the primary channel, as clients show those in messages.
fn react(engine: &mut Engine, req: &mut Request, out: &mut Outbox) -> Result<(), Failure> {
    let chan = engine.channel_of(req)?;
    let emote = req.str_field(K::KEmote).unwrap_or_default();
    if !is_emoji(emote) && !super::emotes::is_emote(engine, chan, emote) {
        return Err(Failure::new(
            K::MalformedUpdate,
            "The :emote must be an emoji or the name of an emote of this channel or the \
             primary channel.",
        ));
    }
    engine.distribute(req, out)
}

/// True for a short sequence of emoji: pictographs with their modifiers,
/// joiners, variation selectors, flags and keycaps.
pub fn is_emoji(text: &str) -> bool {
    let chars: Vec<char> = text.chars().take(MAX_EMOJI_CHARS + 1).collect();
    if chars.is_empty() || chars.len() > MAX_EMOJI_CHARS {
        return false;
    }
    let mut pictographs = 0;
    for (i, &c) in chars.iter().enumerate() {
        if is_pictograph(c) {
            pictographs += 1;
        } else if matches!(c, '0'..='9' | '#' | '*') {
            // A keycap base: only before U+FE0F or U+20E3.
            if !matches!(chars.get(i + 1), Some('\u{fe0f}' | '\u{20e3}')) {
                return false;
            }
            pictographs += 1;
        } else if !is_emoji_modifier(c) {
            return false;
        }
    }
    pictographs > 0
}

/// The Unicode blocks that hold the emoji, and the few single emoji
/// outside them.
fn is_pictograph(c: char) -> bool {
    matches!(
        u32::from(c),
        0x1F000..=0x1FAFF
            | 0x2600..=0x27BF
            | 0x2300..=0x23FF
            | 0x2B00..=0x2BFF
            | 0x2190..=0x21FF
            | 0x2934..=0x2935
            | 0x25A0..=0x25FF
            | 0x3030
            | 0x303D
            | 0x3297
            | 0x3299
            | 0xA9
            | 0xAE
            | 0x203C
            | 0x2049
            | 0x2122
            | 0x2139
            | 0x24C2
    )
}

/// Joiners, variation selectors, the keycap mark and tag characters
/// (skin tones and regional indicators are among the pictographs).
fn is_emoji_modifier(c: char) -> bool {
    matches!(u32::from(c), 0x200D | 0xFE0E | 0xFE0F | 0x20E3 | 0xE0020..=0xE007F)
}

#[cfg(test)]
mod tests {
    use super::is_emoji;

    #[test]
    fn reactions_20_step2_emoji_are_accepted() {
        for ok in [
            "👍", "❤️", "🇯🇵", "👨‍👩‍👧‍👦", "👍🏽", "1️⃣", "#️⃣", "☕", "⭐", "🏴\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}",
        ] {
            assert!(is_emoji(ok), "{ok:?}");
        }
    }

    #[test]
    fn reactions_20_step2_other_text_is_refused() {
        for bad in ["", "a", "1", "lol", "👍 ", "\u{200d}", "👍a", &"👍".repeat(33)] {
            assert!(!is_emoji(bad), "{bad:?}");
        }
    }
}
