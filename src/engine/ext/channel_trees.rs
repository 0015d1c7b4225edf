//! shirakumo-channel-trees (§5 of `shirakumo.mess`): channel names with
//! `/` form a tree. A channel's parent is its name up to the last `/`, or
//! the primary channel for a name without one. A child is created only
//! under an existing parent, checked against the parent's `create` rule
//! (by default the parent's registrant, and anyone under the primary
//! channel), and `channels` with a `channel` lists that channel's
//! children.

use crate::engine::registry::{Extension, Hooks};
use crate::engine::state::{ChanId, UserId};
use crate::engine::{Engine, Failure};
use crate::protocol::names_equal;
use crate::wire::Known as K;

/// §5: no classes of its own; it changes `create` and `channels`.
pub(crate) const EXTENSION: Extension = Extension {
    names: &["shirakumo-channel-trees"],
    hooks: Hooks::NONE,
    fields: &[],
    classes: &[],
};

/// §5 the `/` rule on top of §2.4.4: a slash only between two characters
/// that are not slashes (none first, last, or doubled).
pub(crate) fn slashes_ok(name: &str) -> bool {
    !name.starts_with('/') && !name.ends_with('/') && !name.contains("//")
}

/// §5 the name of a channel's parent; `None` for the primary channel.
fn parent_name(name: &str) -> Option<&str> {
    name.rsplit_once('/').map(|(parent, _)| parent)
}

impl Engine {
    /// §5.3.1 point 1 as §5 changes it: the channel whose `create` rule
    /// governs making the channel `name`, its parent. A name breaking the
    /// `/` rule is a `bad-name`; a missing parent, or an anonymous one
    /// the user is not in, is `no-such-parent-channel`. Names starting
    /// with `@` are left to `create` to refuse.
    pub(crate) fn creation_parent(&self, user: UserId, name: &str) -> Result<ChanId, Failure> {
        if name.starts_with('@') {
            return Ok(self.state.primary);
        }
        if !slashes_ok(name) {
            return Err(Failure::new(
                K::BadName,
                format!(
                    "{name:?} is not a valid channel name: a / may only stand between two \
                     other characters."
                ),
            ));
        }
        let Some(parent) = parent_name(name) else {
            return Ok(self.state.primary);
        };
        match self.state.find_channel(parent) {
            Some(c)
                if !self.state.channel(c).anonymous || self.state.in_channel(user, c) =>
            {
                Ok(c)
            }
            _ => Err(Failure::new(
                K::SNoSuchParentChannel,
                format!("The parent channel {parent:?} of {name:?} does not exist."),
            )),
        }
    }

    /// §5 `channels` with a `channel`: whether `chan` is a child of
    /// `parent` (a channel without `/` is a child of the primary one).
    pub(crate) fn is_child_channel(&self, chan: ChanId, parent: ChanId) -> bool {
        if chan == parent {
            return false;
        }
        let name = &self.state.channel(chan).name;
        let parent_of = parent_name(name).unwrap_or(&self.state.channel(self.state.primary).name);
        names_equal(parent_of, &self.state.channel(parent).name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_trees_5_slash_only_between_other_characters() {
        for ok in ["a", "a/b", "a/b/c", "a b/c d"] {
            assert!(slashes_ok(ok), "{ok}");
        }
        for bad in ["/a", "a/", "a//b", "/", "//"] {
            assert!(!slashes_ok(bad), "{bad}");
        }
        assert_eq!(parent_name("a/b/c"), Some("a/b"));
        assert_eq!(parent_name("a"), None);
    }
}
