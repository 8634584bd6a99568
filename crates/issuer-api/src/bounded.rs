//! JSON values read under a memory budget: a request cannot make the API build a
//! `serde_json::Value` larger than the budget (a `Value` costs about 16 times the text it came
//! from for small numbers and arrays). The budget is in bytes of memory: every node costs
//! the size of a `Value` (`NODE`), every string its bytes on top; reading stops with an error
//! at the first node over it, before the rest is built.
//!
//! Used for issuance `metadata` and for each item of a bulk request, so a bulk body is
//! counted and each item bounded before the next one is read.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// What one node (a value or an object key) costs, in bytes.
pub const NODE: usize = std::mem::size_of::<Value>();

/// Bytes of memory: `NODE` per node (value, key) plus the bytes of every string.
#[derive(Debug)]
pub struct Budget {
    left: usize,
    limit: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Self {
        Self { left: limit, limit }
    }

    fn spend<E: de::Error>(&mut self, units: usize) -> Result<(), E> {
        match self.left.checked_sub(units) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(E::custom(format!(
                "{OVER_BUDGET} (more than {} bytes once read)",
                self.limit
            ))),
        }
    }
}

/// The start of the error message of an exhausted budget, to tell it from bad syntax.
pub const OVER_BUDGET: &str = "JSON value too large";

/// Reads one `Value` spending from `budget`.
pub struct BoundedValue<'b>(pub &'b mut Budget);

impl<'de> DeserializeSeed<'de> for BoundedValue<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BoundedValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.0.spend(NODE)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.spend(NODE)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.spend(NODE)?;
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.spend(NODE)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.spend(NODE + v.len())?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.0.spend(NODE + v.len())?;
        Ok(Value::String(v))
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.0.spend(NODE)?;
        Ok(Value::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.visit_none()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        BoundedValue(self.0).deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.0.spend(NODE)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(BoundedValue(&mut *self.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.0.spend(NODE)?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.0.spend(NODE + key.len())?;
            let value = map.next_value_seed(BoundedValue(&mut *self.0))?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// `deserialize_with` for an optional field read under `LIMIT` bytes.
pub fn optional<'de, D: Deserializer<'de>, const LIMIT: usize>(
    deserializer: D,
) -> Result<Option<Value>, D::Error> {
    let mut budget = Budget::new(LIMIT);
    match BoundedValue(&mut budget).deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => Ok(Some(value)),
    }
}

/// The items of a JSON array, each read under `per_item` bytes and handed to `each` before
/// the next is read; more than `max_items` stops the read.
pub struct BoundedItems<F> {
    pub per_item: usize,
    pub max_items: usize,
    pub each: F,
}

/// Why a bounded array read stopped early.
pub const TOO_MANY_ITEMS: &str = "too many items";

impl<'de, T, F: FnMut(Value) -> T> DeserializeSeed<'de> for BoundedItems<F> {
    type Value = Vec<T>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<T>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T, F: FnMut(Value) -> T> Visitor<'de> for BoundedItems<F> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::new();
        loop {
            let mut budget = Budget::new(self.per_item);
            let Some(item) = seq.next_element_seed(BoundedValue(&mut budget))? else {
                return Ok(out);
            };
            if out.len() == self.max_items {
                return Err(de::Error::custom(format!(
                    "{TOO_MANY_ITEMS}: at most {}",
                    self.max_items
                )));
            }
            out.push((self.each)(item));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, limit: usize) -> Result<Value, serde_json::Error> {
        let mut budget = Budget::new(limit);
        let mut de = serde_json::Deserializer::from_str(text);
        BoundedValue(&mut budget).deserialize(&mut de)
    }

    #[test]
    fn a_value_within_its_budget_reads_as_serde_json_would() {
        let text = r#"{"a": [1, -2, 3.5, true, null, "x"], "b": {"c": "déjà"}}"#;
        assert_eq!(
            read(text, 1_000).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    #[test]
    fn a_wide_or_long_value_stops_at_the_budget() {
        let wide = format!("[{}0]", "0,".repeat(100_000));
        let err = read(&wide, 100 * NODE).unwrap_err();
        assert!(err.to_string().starts_with(OVER_BUDGET), "{err}");
        let long = format!("\"{}\"", "x".repeat(20_000));
        assert!(read(&long, 10_000).is_err());
        assert!(read(&long, 20_000 + NODE).is_ok());
    }

    #[test]
    fn items_are_counted_and_bounded_one_by_one() {
        let read = |text: &str| {
            BoundedItems {
                per_item: 10 * NODE,
                max_items: 3,
                each: |v: Value| v,
            }
            .deserialize(&mut serde_json::Deserializer::from_str(text))
        };
        assert_eq!(read("[1, 2, 3]").unwrap().len(), 3);
        let err = read("[1, 2, 3, 4]").unwrap_err();
        assert!(err.to_string().contains(TOO_MANY_ITEMS), "{err}");
        let err = read("[[1,2,3,4,5,6,7,8,9,10,11,12]]").unwrap_err();
        assert!(err.to_string().contains(OVER_BUDGET), "{err}");
    }
}
