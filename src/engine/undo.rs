//! Confirmations that wait for the store, and undoing the changes the
//! store could not save.
//!
//! A reply that confirms a durable change (§5.2 `register`, §5.3.1
//! `create` of a regular channel, §5.3.2 `permissions`, `grant`, `deny`)
//! is listed in [`Outbox::confirms`] under a [`ConfirmId`] the engine hands
//! out. The engine applies the change in memory at once and keeps a small
//! record of what undoes it. The caller, which knows when the store has
//! committed what, ends each confirmation one way or the other:
//!
//! - [`Engine::settle`]: committed; the undo record is dropped.
//! - [`Engine::fail_pending`]: the store cannot commit; every unsettled
//!   change is undone in memory (newest first), the undo is itself recorded
//!   as a durable change so the disk matches memory once it recovers, and
//!   each confirmation is replaced by a failure naming the cause.
//!
//! Confirmations are settled in order, so the unsettled ones are always
//! the newest. While [`Engine::set_store_failure`] holds a cause, changes
//! that would need a confirmation are refused before anything changes.

use super::state::ChanId;
use super::{ConnId, Engine, Failure, Outbox, Password, Request, Time, print_shared};
use crate::protocol::Rule;
use crate::wire::{Known, Value};
use std::collections::VecDeque;
use std::rc::Rc;

/// Identifies one confirmed durable change until it is settled or failed;
/// increasing, starting at 1.
pub type ConfirmId = u64;

/// A confirmation withdrawn by [`Engine::fail_pending`]: the connection
/// whose update made the change, and the failure update (§3.2, with the
/// update's ID as `update-id`) that takes the confirmation's place there.
/// Copies of the confirmation sent to the user's other connections are to
/// be dropped.
#[derive(Debug)]
pub struct Refusal {
    /// The confirmation withdrawn.
    pub id: ConfirmId,
    /// The connection that sent the update.
    pub conn: ConnId,
    /// The printed failure.
    pub failure: Rc<[u8]>,
}

/// What undoes one change.
#[derive(Debug)]
pub(crate) enum Undo {
    /// §5.2 a profile was registered (`before` is `None`) or its password
    /// changed (`before` is the old one, with the old extension data that
    /// `register` may change too, `shirakumo.mess` §24).
    Profile {
        name: String,
        before: Option<(Password, super::ExtData)>,
    },
    /// §5.3.1 a regular channel was created.
    Channel { name: String },
    /// §5.3.2 a channel's rules changed; `before` is the whole old set.
    Rules {
        name: String,
        before: Vec<(Known, Rule)>,
    },
    /// What an extension keeps on a stored channel changed (§2.4);
    /// `before` is its old value, `NIL` for none.
    // No extension in this build keeps data on channels or profiles yet.
    ChannelData {
        name: String,
        ext: &'static str,
        before: Value,
    },
    /// What an extension keeps on a profile changed (§2.3).
    ProfileData {
        name: String,
        ext: &'static str,
        before: Value,
    },
    /// What an extension keeps on several profiles changed at once
    /// (`shirakumo.mess` §15 a share between two profiles); `before` has
    /// each profile's old value.
    ProfilesData {
        ext: &'static str,
        before: Vec<(String, Value)>,
    },
    /// An item joined or left a server-wide list; `present` is what it
    /// was before.
    ListItem {
        list: &'static str,
        item: String,
        present: bool,
    },
    /// `shirakumo.mess` §3 an emote of a channel was added, replaced or
    /// removed; `before` is the old one, `None` for none.
    Emote {
        channel: String,
        name: String,
        before: Option<super::ext::emotes::Emote>,
    },
    /// `shirakumo.mess` §12 a payload of `size` bytes was shared in
    /// `channel` under `name`.
    Link {
        name: String,
        channel: String,
        size: u64,
    },
}

#[derive(Debug)]
struct Entry {
    id: ConfirmId,
    conn: ConnId,
    update_id: Value,
    undo: Undo,
}

/// The unsettled confirmations, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    entries: VecDeque<Entry>,
    next: ConfirmId,
}

/// An old value taken out of [`super::ExtData`]: moved out when nothing
/// else holds it (a record still waiting for the store may), so that an
/// undo record of a large value (an icon, §16) costs no copy.
fn unshare(before: Option<std::sync::Arc<Value>>) -> Value {
    before.map_or(Value::NIL, |v| {
        std::sync::Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone())
    })
}

/// The text of a failure for a change the store could not save.
fn not_saved(cause: &str) -> String {
    format!("The server could not save this change: {cause}.")
}

impl Engine {
    /// Lists the sends from index `first` on as confirming one change made
    /// by the update `update_id` from `conn`; `undo` reverts it. A change
    /// to a channel that is not stored (anonymous, primary) confirms
    /// nothing: its replies need not wait.
    pub(super) fn confirm(
        &mut self,
        out: &mut Outbox,
        first: usize,
        conn: ConnId,
        update_id: Value,
        undo: Undo,
    ) {
        if let Undo::Channel { name } | Undo::Rules { name, .. } | Undo::ChannelData { name, .. } =
            &undo
            && !self.is_stored_channel(name)
        {
            return;
        }
        let pending = &mut self.undo;
        pending.next += 1;
        let id = pending.next;
        pending.entries.push_back(Entry {
            id,
            conn,
            update_id,
            undo,
        });
        for i in first..out.sends.len() {
            out.confirms.push((i, id));
        }
    }

    /// Every confirmation up to `upto` is committed: forget how to undo it.
    pub fn settle(&mut self, upto: ConfirmId) {
        while self.undo.entries.front().is_some_and(|e| e.id <= upto) {
            if let Some(Entry {
                undo: Undo::Link { size, .. },
                ..
            }) = self.undo.entries.pop_front()
            {
                super::ext::link::saved(self, size);
            }
        }
        let entries = &mut self.undo.entries;
        if entries.is_empty() && entries.capacity() > 64 {
            *entries = VecDeque::new();
        }
    }

    /// Number of confirmations neither settled nor failed.
    pub fn unsettled(&self) -> usize {
        self.undo.entries.len()
    }

    /// The store cannot commit: undoes every unsettled change, newest
    /// first, and returns the failures that replace their confirmations,
    /// oldest first. The undo's own durable changes, and the `leave`s of a
    /// removed channel's members, go into `out`.
    pub fn fail_pending(&mut self, cause: &str, now: Time, out: &mut Outbox) -> Vec<Refusal> {
        let mut refused = Vec::with_capacity(self.undo.entries.len());
        while let Some(entry) = self.undo.entries.pop_back() {
            let class = match entry.undo {
                Undo::Profile { .. } => Known::RegistrationRejected,
                Undo::Channel { .. }
                | Undo::Rules { .. }
                | Undo::ChannelData { .. }
                | Undo::ProfileData { .. }
                | Undo::ProfilesData { .. }
                | Undo::ListItem { .. }
                | Undo::Emote { .. }
                | Undo::Link { .. } => Known::UpdateFailure,
            };
            log::warn!(
                "{} not saved ({cause}): undone",
                match &entry.undo {
                    Undo::Profile { name, .. } => format!("registration of {name:?}"),
                    Undo::Channel { name } => format!("channel {name:?}"),
                    Undo::Rules { name, .. } => format!("rules of channel {name:?}"),
                    Undo::ChannelData { name, ext, .. } => format!("{ext} of channel {name:?}"),
                    Undo::ProfileData { name, ext, .. } => format!("{ext} of profile {name:?}"),
                    Undo::ProfilesData { ext, before } =>
                        format!("{ext} of {} profiles", before.len()),
                    Undo::ListItem { list, item, .. } => format!("{item:?} on the {list}"),
                    Undo::Emote { channel, name, .. } =>
                        format!("emote {name:?} of channel {channel:?}"),
                    Undo::Link { channel, size, .. } =>
                        format!("a shared file of {size} bytes in channel {channel:?}"),
                }
            );
            self.revert(entry.undo, now, out);
            let f = self.failure(class, Some(entry.update_id), not_saved(cause), now);
            if let Some(failure) = print_shared(&f) {
                refused.push(Refusal {
                    id: entry.id,
                    conn: entry.conn,
                    failure,
                });
            }
        }
        refused.reverse();
        refused
    }

    /// Tells the engine whether the store can commit: while `cause` is
    /// set, updates that would change durable state and need a
    /// confirmation are refused with a failure naming it.
    pub fn set_store_failure(&mut self, cause: Option<String>) {
        self.store_failure = cause;
    }

    /// The refusal of an update that would need a confirmation while the
    /// store cannot commit. Updates that change nothing durable (an
    /// anonymous `create`, a `permissions` that only asks) pass.
    pub(super) fn refuse_if_store_fails(&self, req: &Request) -> Result<(), Failure> {
        let Some(cause) = &self.store_failure else {
            return Ok(());
        };
        let class = match req.class {
            Known::Register => Known::RegistrationRejected,
            Known::Create if req.str_field(Known::KChannel).is_some() => Known::UpdateFailure,
            Known::Permissions
                if req
                    .update
                    .get(Known::KPermissions)
                    .and_then(Value::as_list)
                    .is_some_and(|l| !l.is_empty()) =>
            {
                Known::UpdateFailure
            }
            Known::Grant | Known::Deny => Known::UpdateFailure,
            _ => return Ok(()),
        };
        if matches!(req.class, Known::Permissions | Known::Grant | Known::Deny)
            && !req
                .str_field(Known::KChannel)
                .is_some_and(|n| self.is_stored_channel(n))
        {
            return Ok(());
        }
        Err(Failure::new(class, not_saved(cause)))
    }

    /// For extensions about to change durable state: the refusal while
    /// the store cannot commit (checked before anything changes).
    pub(crate) fn refuse_while_store_fails(&self) -> Result<(), Failure> {
        match &self.store_failure {
            Some(cause) => Err(Failure::new(Known::UpdateFailure, not_saved(cause))),
            None => Ok(()),
        }
    }

    /// Sets what extension `ext` keeps on a channel (`NIL` removes it),
    /// records the change for the store and returns the old value.
    /// Pass the old value to [`Engine::confirm_channel_data`] with the
    /// reply that confirms it.
    pub(crate) fn set_channel_data(
        &mut self,
        chan: ChanId,
        ext: &'static str,
        value: Value,
        out: &mut Outbox,
    ) -> Value {
        let data = &mut self.state.channel_mut(chan).data;
        let before = data.get_shared(ext);
        data.set(ext, value);
        let before = unshare(before);
        self.channel_changed(chan, out);
        before
    }

    /// Lists the sends from `first` on as confirming a change made by
    /// [`Engine::set_channel_data`]: held until committed, undone if the
    /// store fails. Nothing waits for an unstored channel.
    pub(crate) fn confirm_channel_data(
        &mut self,
        out: &mut Outbox,
        first: usize,
        req: &Request,
        chan: ChanId,
        ext: &'static str,
        before: Value,
    ) {
        let name = self.state.channel(chan).name.clone();
        let undo = Undo::ChannelData { name, ext, before };
        self.confirm(out, first, req.conn, req.id(), undo);
    }

    /// Sets what extension `ext` keeps on the profile `name` (`NIL`
    /// removes it) and records the change; the old value, or `None` when
    /// there is no such profile.
    pub(crate) fn set_profile_data(
        &mut self,
        name: &str,
        ext: &'static str,
        value: Value,
        out: &mut Outbox,
    ) -> Option<Value> {
        let p = self.state.find_profile_mut(name)?;
        let before = p.data.get_shared(ext);
        p.data.set(ext, value);
        let before = unshare(before);
        self.profile_changed(name, out);
        Some(before)
    }

    /// As [`Engine::confirm_channel_data`], for [`Engine::set_profile_data`].
    pub(crate) fn confirm_profile_data(
        &mut self,
        out: &mut Outbox,
        first: usize,
        req: &Request,
        name: &str,
        ext: &'static str,
        before: Value,
    ) {
        let undo = Undo::ProfileData {
            name: name.to_string(),
            ext,
            before,
        };
        self.confirm(out, first, req.conn, req.id(), undo);
    }

    /// As [`Engine::confirm_profile_data`], for changes of several
    /// profiles by one update (`shirakumo.mess` §15), each made by [`Engine::set_profile_data`]
    /// and given with its old value, in the order made.
    pub(crate) fn confirm_profiles_data(
        &mut self,
        out: &mut Outbox,
        first: usize,
        req: &Request,
        ext: &'static str,
        before: Vec<(String, Value)>,
    ) {
        let undo = Undo::ProfilesData { ext, before };
        self.confirm(out, first, req.conn, req.id(), undo);
    }

    /// The items of a server-wide list, in the order they were added.
    pub(crate) fn list_items(&self, list: &str) -> &[String] {
        self.state.lists.get(list).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Puts `item` on the server-wide list `list` or takes it off
    /// (`present`), recording the change for the store; items compare
    /// exactly (callers give them in a canonical form). Returns whether
    /// it was on the list before.
    pub(crate) fn set_list_item(
        &mut self,
        list: &'static str,
        item: &str,
        present: bool,
        out: &mut Outbox,
    ) -> bool {
        let items = self.state.lists.entry(list.to_string()).or_default();
        let at = items.iter().position(|i| i == item);
        match (at, present) {
            (Some(_), true) => return true,
            (None, false) => return false,
            (Some(i), false) => {
                items.remove(i);
            }
            (None, true) => items.push(item.to_string()),
        }
        out.changes.push(super::Change::List {
            list: list.to_string(),
            item: item.to_string(),
            present,
        });
        at.is_some()
    }

    /// Lists the sends from `first` on as confirming a change made by
    /// [`Engine::set_list_item`], `before` being what it returned.
    pub(crate) fn confirm_list_item(
        &mut self,
        out: &mut Outbox,
        first: usize,
        req: &Request,
        list: &'static str,
        item: &str,
        before: bool,
    ) {
        let undo = Undo::ListItem {
            list,
            item: item.to_string(),
            present: before,
        };
        self.confirm(out, first, req.conn, req.id(), undo);
    }

    /// Whether a channel's rules are stored: regular channels but the
    /// primary one.
    fn is_stored_channel(&self, name: &str) -> bool {
        self.state
            .find_channel(name)
            .is_some_and(|c| c != self.state.primary && !self.state.channel(c).anonymous)
    }

    fn revert(&mut self, undo: Undo, now: Time, out: &mut Outbox) {
        match undo {
            Undo::Profile { name, before: None } => {
                if self.state.remove_profile(&name).is_some() {
                    out.changes.push(super::Change::DeleteProfile(name));
                }
            }
            Undo::Profile {
                name,
                before: Some((password, data)),
            } => {
                if let Some(p) = self.state.find_profile_mut(&name) {
                    p.password = password;
                    p.data = data;
                    self.profile_changed(&name, out);
                }
            }
            Undo::Channel { name } => {
                if let Some(chan) = self.state.find_channel(&name) {
                    self.remove_unsaved_channel(chan, now, out);
                    out.changes.push(super::Change::DeleteChannel(name));
                }
            }
            Undo::Rules { name, before } => {
                if let Some(chan) = self.state.find_channel(&name) {
                    self.state.channel_mut(chan).rules = before;
                    self.channel_changed(chan, out);
                }
            }
            Undo::ChannelData { name, ext, before } => {
                if let Some(chan) = self.state.find_channel(&name) {
                    self.state.channel_mut(chan).data.set(ext, before);
                    if ext == super::ext::roles::KEY {
                        super::ext::roles::reindex(self, chan);
                    }
                    self.channel_changed(chan, out);
                }
            }
            Undo::ProfileData { name, ext, before } => {
                if let Some(p) = self.state.find_profile_mut(&name) {
                    p.data.set(ext, before);
                    self.profile_changed(&name, out);
                }
            }
            Undo::ProfilesData { ext, before } => {
                for (name, value) in before.into_iter().rev() {
                    if let Some(p) = self.state.find_profile_mut(&name) {
                        p.data.set(ext, value);
                        self.profile_changed(&name, out);
                    }
                }
            }
            Undo::ListItem {
                list,
                item,
                present,
            } => {
                self.set_list_item(list, &item, present, out);
            }
            Undo::Emote {
                channel,
                name,
                before,
            } => super::ext::emotes::restore(self, &channel, &name, before, out),
            Undo::Link {
                name,
                channel,
                size,
            } => super::ext::link::unshare(self, name, &channel, size, out),
        }
    }

    /// Removes a channel (one whose creation was not saved, or one
    /// destroyed, `shirakumo.mess` §7): each member is told by its own
    /// `leave` (§5.4.2) that it is out; the channel is gone, so the
    /// others' leaves would tell nothing more.
    pub(super) fn remove_unsaved_channel(&mut self, chan: ChanId, now: Time, out: &mut Outbox) {
        let members = self.state.channel(chan).members.clone();
        for user in members {
            let name = self.state.user(user).name.clone();
            let leave = self.leave_update(&name, chan, None, now);
            self.send_user(out, user, &leave);
            self.state.part(user, chan, now);
        }
        if let Some(c) = self.state.remove_channel(chan) {
            self.channel_removed(&c, out);
        }
    }
}
