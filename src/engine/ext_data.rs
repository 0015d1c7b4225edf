//! Extension state that survives restarts, per channel (§2.4) and per
//! profile (§2.3): one value per extension, under the extension's name.
//! The store keeps it in the `data` column of its row, so an extension
//! needs no schema migration of its own, and it is written in the same
//! batched commit as the rest of the row.

use crate::wire::Value;

/// The durable state extensions keep on one channel or profile.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExtData(Vec<(Box<str>, Value)>);

impl ExtData {
    /// The value the extension named `ext` keeps here.
    pub fn get(&self, ext: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| &**k == ext).map(|(_, v)| v)
    }

    /// Sets the value of the extension named `ext`; `NIL` removes it.
    pub fn set(&mut self, ext: &str, value: Value) {
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

    /// True when no extension keeps anything here.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As one wire value, `(("name" value) ...)`, for the store.
    pub fn to_value(&self) -> Value {
        Value::List(
            self.0
                .iter()
                .map(|(k, v)| Value::List(vec![Value::string(&**k), v.clone()]))
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
