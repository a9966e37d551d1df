//! The JSON form of a commitment and RFC 6902 JSON Patch over it: operations apply all or
//! nothing, and every problem is named by the operation that caused it.

use serde_json::{Value, json};

use super::{Commitment, Terms};
use crate::domain::etag::etag;
use crate::domain::validation::Violations;

/// Most operations in one patch.
pub const MAX_OPERATIONS: usize = 100;

/// Fields of the document that can be read (and tested) but not changed.
pub const READ_ONLY: [&str; 8] =
    ["id", "customer_id", "status", "successor_id", "end_time", "create_time", "update_time", "etag"];

/// One operation as the caller sent it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Operation {
    pub op: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Why a patch was not applied.
#[derive(Clone, Debug, PartialEq)]
pub enum PatchFailure {
    /// Malformed operations, paths outside the document, immutable fields, or a result
    /// that breaks a rule: each named by its operation.
    Invalid(Violations),
    /// A `test` operation did not hold.
    TestFailed { index: usize, path: String },
}

/// The commitment's JSON form.
pub fn document(c: &Commitment) -> Value {
    let mut doc = serde_json::to_value(&c.terms).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut doc {
        map.insert("id".into(), json!(c.id));
        map.insert("customer_id".into(), json!(c.customer));
        map.insert("status".into(), json!(c.status));
        map.insert("successor_id".into(), json!(c.successor));
        map.insert("end_time".into(), json!(c.ended_at));
        map.insert("create_time".into(), json!(c.created_at));
        map.insert("update_time".into(), json!(c.updated_at));
        map.insert("etag".into(), json!(etag(c.version)));
    }
    doc
}

/// The segments of a JSON Pointer ("/a/b~1c/0" -> a, b/c, 0).
fn pointer_segments(pointer: &str) -> Vec<String> {
    pointer.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect()
}

/// The segments of a field path ("a.b[0].c" -> a, b, 0, c).
fn field_segments(field: &str) -> Vec<String> {
    field.replace('[', ".").replace(']', "").split('.').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn related(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    // "-" (append) names the element the operation adds, whatever its index.
    a[..n].iter().zip(&b[..n]).all(|(x, y)| x == y || x == "-" || y == "-")
}

/// The index of the last operation touching `field` (or under it, or above it).
fn culprit(ops: &[Operation], field: &str) -> Option<usize> {
    let target = field_segments(field);
    ops.iter().enumerate().rev().find_map(|(i, op)| {
        let touches = |p: &str| related(&pointer_segments(p), &target);
        (op.op != "test" && (touches(&op.path) || op.from.as_deref().is_some_and(touches))).then_some(i)
    })
}

/// Renames violations of the patched document after the operations that caused them.
pub fn blame(ops: &[Operation], found: &Violations) -> Violations {
    let mut v = Violations::default();
    for item in found.items() {
        match culprit(ops, &item.field) {
            Some(i) => v.add(format!("operations[{i}]"), format!("{}: {}", item.field, item.description)),
            None => v.add("operations", format!("{}: {}", item.field, item.description)),
        }
    }
    v
}

fn parse_ops(ops: &[Operation], v: &mut Violations) -> Vec<json_patch::PatchOperation> {
    if ops.is_empty() || ops.len() > MAX_OPERATIONS {
        v.add("operations", format!("must hold 1 to {MAX_OPERATIONS} operations"));
        return Vec::new();
    }
    let mut parsed = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let field = format!("operations[{i}]");
        if !["add", "remove", "replace", "move", "copy", "test"].contains(&op.op.as_str()) {
            v.add(format!("{field}.op"), "must be one of add, remove, replace, move, copy, test");
            continue;
        }
        if matches!(op.op.as_str(), "add" | "replace" | "test") && op.value.is_none() {
            v.add(format!("{field}.value"), format!("is required by {}", op.op));
            continue;
        }
        if matches!(op.op.as_str(), "move" | "copy") && op.from.is_none() {
            v.add(format!("{field}.from"), format!("is required by {}", op.op));
            continue;
        }
        let reported = v.items().len();
        for (name, pointer) in [("path", Some(op.path.as_str())), ("from", op.from.as_deref())] {
            let Some(pointer) = pointer else { continue };
            let first = pointer_segments(pointer).into_iter().next();
            if !pointer.is_empty() && !pointer.starts_with('/') {
                v.add(format!("{field}.{name}"), "must be a JSON Pointer such as /time_range/end_time");
            } else if op.op != "test"
                && (pointer.is_empty() || first.is_some_and(|f| READ_ONLY.contains(&f.as_str())))
            {
                let removes = name == "path" || op.op == "move";
                if removes {
                    v.add(format!("{field}.{name}"), "names a field that cannot change");
                }
            }
        }
        if v.items().len() > reported {
            continue;
        }
        match serde_json::to_value(op).and_then(serde_json::from_value::<json_patch::PatchOperation>) {
            Ok(p) => parsed.push(p),
            Err(e) => v.add(field, format!("is not a JSON Patch operation: {e}")),
        }
    }
    parsed
}

/// The terms `ops` make of commitment `c`'s. Rules are left to the caller, which names
/// their breaches with [`blame`].
pub fn apply(c: &Commitment, ops: &[Operation]) -> Result<Terms, PatchFailure> {
    let mut v = Violations::default();
    let parsed = parse_ops(ops, &mut v);
    if !v.is_empty() {
        return Err(PatchFailure::Invalid(v));
    }
    let original = document(c);
    let mut doc = original.clone();
    // On a copy: a failed patch leaves nothing half done.
    if let Err(e) = json_patch::patch_unsafe(&mut doc, &parsed) {
        return Err(match e.kind {
            json_patch::PatchErrorKind::TestFailed => {
                PatchFailure::TestFailed { index: e.operation, path: e.path.to_string() }
            }
            _ => PatchFailure::Invalid(Violations::single(
                format!("operations[{}].path", e.operation),
                format!("{} ({})", e.kind, e.path),
            )),
        });
    }
    let Value::Object(mut map) = doc else {
        return Err(PatchFailure::Invalid(Violations::single(
            "operations",
            "must leave the commitment an object",
        )));
    };
    for key in READ_ONLY {
        map.remove(key);
    }
    serde_path_to_error::deserialize::<_, Terms>(Value::Object(map)).map_err(|e| {
        let field = e.path().to_string();
        let found = Violations::single(field, e.inner().to_string());
        PatchFailure::Invalid(blame(ops, &found))
    })
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
