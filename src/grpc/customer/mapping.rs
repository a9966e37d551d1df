//! Customer messages <-> domain values.

use crate::domain::customer::{self, Customer, CustomerChanges, CustomerDraft, CustomerFilter, NewCustomer};
use crate::domain::etag::etag;
use crate::domain::ids::CustomerId;
use crate::domain::page::PageRequest;
use crate::domain::seal::TokenKey;
use crate::domain::text::filter_text;
use crate::domain::validation::Violations;
use crate::grpc::convert::{key_id, mask_paths, parse_id, set_fields, timestamp};
use crate::proto::v1 as pb;

fn draft(c: pb::Customer) -> CustomerDraft {
    CustomerDraft { external_id: c.external_id, name: c.name, time_zone: c.time_zone }
}

pub fn new_customer(req: pb::CreateCustomerRequest) -> Result<NewCustomer, Violations> {
    let mut v = Violations::at("customer");
    let Some(c) = req.customer else {
        v.add("", "is required");
        return Err(v);
    };
    let new = customer::validate_new(draft(c), &mut v);
    v.finish(new)
}

/// The id, the caller's etag, and the changes of an update request.
pub fn update(req: pb::UpdateCustomerRequest) -> Result<(CustomerId, String, CustomerChanges), Violations> {
    let mut v = Violations::default();
    let set = req.customer.as_ref().map_or_else(Vec::new, |c| {
        set_fields(&[
            ("external_id", !c.external_id.is_empty()),
            ("name", !c.name.is_empty()),
            ("time_zone", !c.time_zone.is_empty()),
        ])
    });
    let paths = mask_paths(&mut v, req.update_mask, &customer::MUTABLE_FIELDS, &set);
    let Some(c) = req.customer else {
        v.add("customer", "is required");
        return Err(v);
    };
    let id = parse_id(&mut v, "customer.id", &c.id);
    let etag = c.etag.clone();
    let changes = v.nested("customer", |v| customer::validate_changes(draft(c), &paths, v));
    match id {
        Some(id) if v.is_empty() => Ok((id, etag, changes)),
        _ => Err(v),
    }
}

/// Filters, their fingerprint for page tokens, and the page of a list request.
pub fn list(
    req: pb::ListCustomersRequest,
    tokens: TokenKey,
) -> Result<(CustomerFilter, String, PageRequest), Violations> {
    let mut v = Violations::default();
    let key = format!("external_id={}|time_zone={}", req.external_id, req.time_zone);
    let page = PageRequest::parse(req.page_size, &req.page_token, &key, tokens, &mut v);
    let filter = CustomerFilter {
        external_id: filter_text(&mut v, "external_id", req.external_id),
        time_zone: filter_text(&mut v, "time_zone", req.time_zone),
    };
    v.finish((filter, key, page))
}

pub fn customer(c: Customer) -> pb::Customer {
    pb::Customer {
        id: c.id.to_string(),
        external_id: c.external_id,
        name: c.name,
        time_zone: c.time_zone.name().to_owned(),
        create_time: Some(timestamp(c.created_at)),
        update_time: Some(timestamp(c.updated_at)),
        etag: etag(c.version),
        created_by: key_id(c.by.created_by),
        updated_by: key_id(c.by.updated_by),
    }
}
