//! `google.protobuf.Value` <-> `serde_json::Value`, for JSON Patch values.
//!
//! `Value` carries every number as a 64-bit float; whole numbers become JSON integers so
//! counts (months) read as integers. Decimal amounts in the commitment document are
//! strings and a number is refused there, so no money passes through a float.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};

/// A protobuf value as JSON.
pub fn to_json(v: Value) -> serde_json::Value {
    match v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(b),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s),
        Some(Kind::NumberValue(n)) => {
            let whole = n.fract() == 0.0 && n.abs() < 9.0e15;
            if whole {
                serde_json::Value::from(n as i64)
            } else {
                serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
        Some(Kind::ListValue(l)) => serde_json::Value::Array(l.values.into_iter().map(to_json).collect()),
        Some(Kind::StructValue(s)) => {
            serde_json::Value::Object(s.fields.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
    }
}

/// JSON as a protobuf value.
pub fn from_json(v: serde_json::Value) -> Value {
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::Array(a) => {
            Kind::ListValue(ListValue { values: a.into_iter().map(from_json).collect() })
        }
        serde_json::Value::Object(o) => {
            Kind::StructValue(Struct { fields: o.into_iter().map(|(k, v)| (k, from_json(v))).collect() })
        }
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_whole_numbers_stay_integers() {
        let doc = serde_json::json!({"a": [1, "2.50", true, null], "b": {"c": 12}});
        assert_eq!(to_json(from_json(doc.clone())), doc);
        assert_eq!(to_json(from_json(serde_json::json!(12))).to_string(), "12");
    }
}
