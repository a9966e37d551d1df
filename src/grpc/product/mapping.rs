//! Product messages <-> domain values.

use crate::domain::etag::etag;
use crate::domain::ids::ProductId;
use crate::domain::page::PageRequest;
use crate::domain::product::{
    self, NewProduct, Product, ProductChanges, ProductDraft, ProductFilter, ProductKind,
};
use crate::domain::seal::TokenKey;
use crate::domain::text::filter_text;
use crate::domain::validation::Violations;
use crate::grpc::convert::{key_id, mask_paths, non_empty, parse_id, set_fields, timestamp};
use crate::proto::v1 as pb;

/// The domain kind of a wire kind; `None` for UNSPECIFIED or unknown numbers.
pub fn kind_from_wire(kind: i32) -> Option<ProductKind> {
    match pb::ProductKind::try_from(kind).ok()? {
        pb::ProductKind::Service => Some(ProductKind::Service),
        pb::ProductKind::InventoryVariant => Some(ProductKind::InventoryVariant),
        pb::ProductKind::Unspecified => None,
    }
}

pub fn kind_to_wire(kind: ProductKind) -> pb::ProductKind {
    match kind {
        ProductKind::Service => pb::ProductKind::Service,
        ProductKind::InventoryVariant => pb::ProductKind::InventoryVariant,
    }
}

fn draft(p: pb::Product) -> ProductDraft {
    ProductDraft {
        code: p.code,
        name: p.name,
        tags: p.tags,
        service_type: non_empty(p.service_type),
        service_family: non_empty(p.service_family),
        kind: kind_from_wire(p.kind),
    }
}

pub fn new_product(req: pb::CreateProductRequest) -> Result<NewProduct, Violations> {
    let mut v = Violations::at("product");
    let Some(p) = req.product else {
        v.add("", "is required");
        return Err(v);
    };
    let new = product::validate_new(draft(p), &mut v);
    v.finish(new)
}

/// The id, the caller's etag, and the changes of an update request.
pub fn update(req: pb::UpdateProductRequest) -> Result<(ProductId, String, ProductChanges), Violations> {
    let mut v = Violations::default();
    let set = req.product.as_ref().map_or_else(Vec::new, |p| {
        set_fields(&[
            ("code", !p.code.is_empty()),
            ("name", !p.name.is_empty()),
            ("tags", !p.tags.is_empty()),
            ("service_type", !p.service_type.is_empty()),
            ("service_family", !p.service_family.is_empty()),
            ("kind", p.kind != 0),
        ])
    });
    let paths = mask_paths(&mut v, req.update_mask, &product::MUTABLE_FIELDS, &set);
    let Some(p) = req.product else {
        v.add("product", "is required");
        return Err(v);
    };
    let id = parse_id(&mut v, "product.id", &p.id);
    let etag = p.etag.clone();
    let changes = v.nested("product", |v| product::validate_changes(draft(p), &paths, v));
    match id {
        Some(id) if v.is_empty() => Ok((id, etag, changes)),
        _ => Err(v),
    }
}

/// Filters, their fingerprint for page tokens, and the page of a list request.
pub fn list(
    req: pb::ListProductsRequest,
    tokens: TokenKey,
) -> Result<(ProductFilter, String, PageRequest), Violations> {
    let mut v = Violations::default();
    let key = format!(
        "code={}|kind={}|tag={}|type={}|family={}",
        req.code, req.kind, req.tag, req.service_type, req.service_family
    );
    let page = PageRequest::parse(req.page_size, &req.page_token, &key, tokens, &mut v);
    let kind = match req.kind {
        0 => None,
        k => {
            let kind = kind_from_wire(k);
            if kind.is_none() {
                v.add("kind", "is not a known product kind");
            }
            kind
        }
    };
    let filter = ProductFilter {
        code: filter_text(&mut v, "code", req.code),
        kind,
        tag: filter_text(&mut v, "tag", req.tag),
        service_type: filter_text(&mut v, "service_type", req.service_type),
        service_family: filter_text(&mut v, "service_family", req.service_family),
    };
    v.finish((filter, key, page))
}

pub fn product(p: Product) -> pb::Product {
    pb::Product {
        id: p.id.to_string(),
        code: p.code,
        name: p.name,
        tags: p.tags,
        service_type: p.service_type.unwrap_or_default(),
        service_family: p.service_family.unwrap_or_default(),
        kind: kind_to_wire(p.kind).into(),
        create_time: Some(timestamp(p.created_at)),
        update_time: Some(timestamp(p.updated_at)),
        etag: etag(p.version),
        created_by: key_id(p.by.created_by),
        updated_by: key_id(p.by.updated_by),
    }
}
