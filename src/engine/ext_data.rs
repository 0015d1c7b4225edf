//! Extension state that survives restarts, per channel (§2.4) and per
//! profile (§2.3): one value per extension, under the extension's name.
//! The store keeps it in the `data` column of its row, so an extension
//! needs no schema migration of its own, and it is written in the same
//! batched commit as the rest of the row.
//!
//! Each value is shared (`Arc`): a row's record for the store is taken on
//! every change of the row (a login's `last_used`, a grant), and copying
//! it then costs a reference count per extension, not the value itself
//! (an icon of §16 may be a megabyte).

use crate::wire::Value;
use std::sync::Arc;

/// The durable state extensions keep on one channel or profile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExtData(Vec<(Box<str>, Arc<Value>)>);

impl ExtData {
    /// The value the extension named `ext` keeps here.
    pub fn get(&self, ext: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| &**k == ext).map(|(_, v)| &**v)
    }

    /// The value of `ext`, shared: a copy that costs no copying (§2.4).
    pub fn get_shared(&self, ext: &str) -> Option<Arc<Value>> {
        self.0
            .iter()
            .find(|(k, _)| &**k == ext)
            .map(|(_, v)| v.clone())
    }

    /// Sets the value of the extension named `ext`; `NIL` removes it.
    pub fn set(&mut self, ext: &str, value: Value) {
        self.set_shared(ext, Arc::new(value));
    }

    /// As [`ExtData::set`], with a value that may be shared elsewhere (§2.4).
    pub fn set_shared(&mut self, ext: &str, value: Arc<Value>) {
        let slot = self.0.iter().position(|(k, _)| &**k == ext);
        match (slot, value.is_nil()) {
            (Some(i), true) => {
                self.0.remove(i);
            }
            (Some(i), false) => self.0[i].1 = value,
            (None, true) => {}
            (None, false) => self.0.push((ext.into(), value)),
        }
    }

    /// True when both hold the very same values (shared, not merely
    /// equal): nothing was set on either since one was copied from the
    /// other. Lets the store skip rewriting data that did not change
    /// (§2.3, §2.4).
    pub fn same_as(&self, other: &ExtData) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|((a, x), (b, y))| a == b && Arc::ptr_eq(x, y))
    }

    /// True when no extension keeps anything here.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As one wire value, `(("name" value) ...)`, for the store.
    pub fn to_value(&self) -> Value {
        Value::List(
            self.0
                .iter()
                .map(|(k, v)| Value::List(vec![Value::string(&**k), (**v).clone()]))
                .collect(),
        )
    }

    /// Reads what [`ExtData::to_value`] wrote; `None` if it is not that.
    pub fn from_value(value: &Value) -> Option<ExtData> {
        if value.is_nil() {
            return Some(ExtData::default());
        }
        let mut data = ExtData::default();
        for item in value.as_list()? {
            match item.as_list()? {
                [name, v] => data.set(name.as_str()?, v.clone()),
                _ => return None,
            }
        }
        Some(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloned_data_shares_its_values_2_4() {
        let mut data = ExtData::default();
        data.set("shirakumo-icons", Value::string("x".repeat(1 << 20)));
        let copy = data.clone();
        let (a, b) = (
            data.get_shared("shirakumo-icons").unwrap(),
            copy.get_shared("shirakumo-icons").unwrap(),
        );
        assert!(Arc::ptr_eq(&a, &b), "a copy of the row shares the megabyte");
        assert_eq!(copy, data);
        assert!(copy.same_as(&data));
        let mut changed = copy.clone();
        changed.set("shirakumo-icons", Value::string("x".repeat(1 << 20)));
        assert_eq!(changed, data, "equal values");
        assert!(!changed.same_as(&data), "but set anew");
    }
}
