//! Products of the catalog: what usage, commits, promos and limits refer to.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::authorship::Authorship;
use super::ids::{ApiKeyId, ProductId};
use super::text::{check_code, check_name};
use super::validation::Violations;

/// What a product is (seed 002's `productType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProductKind {
    Service,
    InventoryVariant,
}

impl ProductKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "SERVICE",
            Self::InventoryVariant => "INVENTORY_VARIANT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "SERVICE" => Some(Self::Service),
            "INVENTORY_VARIANT" => Some(Self::InventoryVariant),
            _ => None,
        }
    }
}

/// A product as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Product {
    pub id: ProductId,
    pub code: String,
    pub name: String,
    pub tags: Vec<String>,
    pub service_type: Option<String>,
    pub service_family: Option<String>,
    pub kind: ProductKind,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub by: Authorship,
}

/// Product fields as sent by a caller, not yet checked; `kind` is `None` when unset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProductDraft {
    pub code: String,
    pub name: String,
    pub tags: Vec<String>,
    pub service_type: Option<String>,
    pub service_family: Option<String>,
    pub kind: Option<ProductKind>,
}

/// A valid new product.
#[derive(Clone, Debug, PartialEq)]
pub struct NewProduct {
    pub code: String,
    pub name: String,
    pub tags: Vec<String>,
    pub service_type: Option<String>,
    pub service_family: Option<String>,
    pub kind: ProductKind,
}

/// Valid changes to a product; `None` leaves a field as it is (for the optional
/// service type and family, `Some(None)` clears them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProductChanges {
    pub code: Option<String>,
    pub name: Option<String>,
    pub tags: Option<Vec<String>>,
    pub service_type: Option<Option<String>>,
    pub service_family: Option<Option<String>>,
    pub kind: Option<ProductKind>,
}

/// Filters of a product listing; `None` does not filter.
#[derive(Clone, Debug, Default)]
pub struct ProductFilter {
    pub code: Option<String>,
    pub kind: Option<ProductKind>,
    pub tag: Option<String>,
    pub service_type: Option<String>,
    pub service_family: Option<String>,
}

/// Mutable fields, as named in an update mask.
pub const MUTABLE_FIELDS: [&str; 6] = ["code", "name", "tags", "service_type", "service_family", "kind"];

const MAX_CODE: usize = 128;
const MAX_NAME: usize = 200;
const MAX_TAGS: usize = 50;

fn check_tags(v: &mut Violations, tags: &[String]) {
    if tags.len() > MAX_TAGS {
        v.add("tags", format!("must have at most {MAX_TAGS} tags"));
    }
    let mut seen = HashSet::new();
    for (i, tag) in tags.iter().enumerate() {
        let field = format!("tags[{i}]");
        check_code(v, &field, tag, MAX_CODE);
        if !seen.insert(tag.as_str()) {
            v.add(&field, "is a duplicate");
        }
    }
}

fn check_optional_code(v: &mut Violations, field: &str, value: &Option<String>) {
    if let Some(value) = value {
        check_code(v, field, value, MAX_CODE);
    }
}

fn check_kind(v: &mut Violations, kind: Option<ProductKind>) -> ProductKind {
    kind.unwrap_or_else(|| {
        v.add("kind", "must be PRODUCT_KIND_SERVICE or PRODUCT_KIND_INVENTORY_VARIANT");
        ProductKind::Service
    })
}

/// Checks a draft for creation; every problem goes to `v`.
pub fn validate_new(d: ProductDraft, v: &mut Violations) -> NewProduct {
    check_code(v, "code", &d.code, MAX_CODE);
    check_name(v, "name", &d.name, MAX_NAME);
    check_tags(v, &d.tags);
    check_optional_code(v, "service_type", &d.service_type);
    check_optional_code(v, "service_family", &d.service_family);
    let kind = check_kind(v, d.kind);
    NewProduct {
        code: d.code,
        name: d.name,
        tags: d.tags,
        service_type: d.service_type,
        service_family: d.service_family,
        kind,
    }
}

/// Checks the fields of `d` named in `mask` (paths of [`MUTABLE_FIELDS`]).
pub fn validate_changes(d: ProductDraft, mask: &[&str], v: &mut Violations) -> ProductChanges {
    let mut c = ProductChanges::default();
    if mask.contains(&"code") {
        check_code(v, "code", &d.code, MAX_CODE);
        c.code = Some(d.code);
    }
    if mask.contains(&"name") {
        check_name(v, "name", &d.name, MAX_NAME);
        c.name = Some(d.name);
    }
    if mask.contains(&"tags") {
        check_tags(v, &d.tags);
        c.tags = Some(d.tags);
    }
    if mask.contains(&"service_type") {
        check_optional_code(v, "service_type", &d.service_type);
        c.service_type = Some(d.service_type);
    }
    if mask.contains(&"service_family") {
        check_optional_code(v, "service_family", &d.service_family);
        c.service_family = Some(d.service_family);
    }
    if mask.contains(&"kind") {
        c.kind = Some(check_kind(v, d.kind));
    }
    c
}

impl Product {
    /// The product that `new` describes, created at `now`.
    pub fn create(id: ProductId, new: NewProduct, now: DateTime<Utc>, key: Option<ApiKeyId>) -> Self {
        Self {
            id,
            code: new.code,
            name: new.name,
            tags: new.tags,
            service_type: new.service_type,
            service_family: new.service_family,
            kind: new.kind,
            created_at: now,
            updated_at: now,
            version: 1,
            by: Authorship::created(key),
        }
    }

    /// This product with `c` applied at `now` with `key`, one version later.
    pub fn apply(&self, c: ProductChanges, now: DateTime<Utc>, key: Option<ApiKeyId>) -> Self {
        Self {
            id: self.id,
            code: c.code.unwrap_or_else(|| self.code.clone()),
            name: c.name.unwrap_or_else(|| self.name.clone()),
            tags: c.tags.unwrap_or_else(|| self.tags.clone()),
            service_type: c.service_type.unwrap_or_else(|| self.service_type.clone()),
            service_family: c.service_family.unwrap_or_else(|| self.service_family.clone()),
            kind: c.kind.unwrap_or(self.kind),
            created_at: self.created_at,
            updated_at: now,
            version: self.version + 1,
            by: self.by.changed(key),
        }
    }

    /// True when the product carries every one of `tags`.
    pub fn has_all_tags(&self, tags: &[String]) -> bool {
        tags.iter().all(|t| self.tags.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_their_seed_names() {
        for (k, name) in
            [(ProductKind::Service, "SERVICE"), (ProductKind::InventoryVariant, "INVENTORY_VARIANT")]
        {
            assert_eq!((k.as_str(), ProductKind::parse(name)), (name, Some(k)));
        }
        assert_eq!(ProductKind::parse("service"), None);
    }

    #[test]
    fn fifty_tags_are_allowed_and_a_service_type_is_checked_as_a_code() {
        let draft = |tags: usize, service_type: &str| ProductDraft {
            code: "CREED".into(),
            name: "Creed".into(),
            tags: (0..tags).map(|i| format!("t{i}")).collect(),
            service_type: Some(service_type.into()),
            service_family: None,
            kind: Some(ProductKind::Service),
        };
        let fields = |d: ProductDraft| {
            let mut v = Violations::default();
            validate_new(d, &mut v);
            v.items().iter().map(|i| i.field.clone()).collect::<Vec<_>>()
        };
        assert!(fields(draft(MAX_TAGS, "Usage")).is_empty());
        assert_eq!(fields(draft(MAX_TAGS + 1, "Usage")), ["tags"]);
        assert_eq!(fields(draft(0, " padded")), ["service_type"]);
    }

    #[test]
    fn a_change_advances_the_version_and_tags_are_matched_all_together() {
        let mut v = Violations::default();
        let new = validate_new(
            ProductDraft {
                code: "CREED".into(),
                name: "Creed".into(),
                tags: vec!["vod".into(), "hd".into()],
                kind: Some(ProductKind::Service),
                ..Default::default()
            },
            &mut v,
        );
        let p = Product::create(ProductId(uuid::Uuid::from_u128(1)), new, DateTime::UNIX_EPOCH, None);
        let next = p.apply(ProductChanges::default(), DateTime::UNIX_EPOCH, None);
        assert_eq!(next.version, p.version + 1);
        assert!(p.has_all_tags(&["vod".into(), "hd".into()]));
        assert!(p.has_all_tags(&[]));
        assert!(!p.has_all_tags(&["vod".into(), "sd".into()]));
    }

    fn service(code: &str) -> ProductDraft {
        ProductDraft {
            code: code.into(),
            name: "Video on demand".into(),
            kind: Some(ProductKind::Service),
            ..Default::default()
        }
    }

    #[test]
    fn valid_product_passes() {
        let mut v = Violations::default();
        validate_new(service("CREED"), &mut v);
        assert!(v.is_empty(), "{v}");
    }

    #[test]
    fn product_needs_a_kind() {
        let mut v = Violations::default();
        validate_new(ProductDraft { kind: None, ..service("CREED") }, &mut v);
        assert_eq!(v.items()[0].field, "kind");
    }

    #[test]
    fn duplicate_and_empty_tags_are_named_by_index() {
        let mut v = Violations::default();
        let d = ProductDraft { tags: vec!["vod".into(), "".into(), "vod".into()], ..service("CREED") };
        validate_new(d, &mut v);
        let bad: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
        assert_eq!(bad, ["tags[1]", "tags[2]"]);
    }

    #[test]
    fn too_many_tags_are_rejected() {
        let mut v = Violations::default();
        let d = ProductDraft { tags: (0..51).map(|i| format!("t{i}")).collect(), ..service("CREED") };
        validate_new(d, &mut v);
        assert_eq!(v.items()[0].field, "tags");
    }

    #[test]
    fn clearing_the_service_type_is_a_change() {
        let mut v = Violations::default();
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let d = ProductDraft { service_type: Some("Usage Services".into()), ..service("CREED") };
        let p = Product::create(ProductId::generate(), validate_new(d, &mut v), now, None);
        let c = validate_changes(ProductDraft::default(), &["service_type"], &mut v);
        assert_eq!(p.apply(c, now, None).service_type, None);
    }
}
