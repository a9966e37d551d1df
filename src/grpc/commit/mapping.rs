//! Commit messages <-> domain values.

use crate::domain::commit::adjustment::check_void_reason;
use crate::domain::commit::validate::{
    AccessItemDraft, ChargeDraft, CommitDraft, InvoiceItemDraft, InvoiceScheduleDraft, RecurringDraft,
    SpecifierDraft, check_commit_name, check_custom_fields, check_description,
};
use crate::domain::commit::{
    self, Commit, CommitChanges, CommitFilter, CommitType, Distribution, Frequency, InvoiceCharge,
};
use crate::domain::etag::etag;
use crate::domain::ids::CommitId;
use crate::domain::money::{parse_credit_type, parse_decimal};
use crate::domain::page::PageRequest;
use crate::domain::seal::TokenKey;
use crate::domain::validation::{Parsed, Violations};
use crate::grpc::convert::{
    decimal, key_id, mask_paths, non_empty, opt_timestamp, parse_id, parsed_decimal, parsed_enum, parsed_id,
    parsed_optional_decimal, parsed_timestamp, set_fields, timestamp,
};
use crate::proto::customer_id;
use crate::proto::v1 as pb;

fn commit_type(v: i32) -> Option<CommitType> {
    match pb::CommitType::try_from(v).ok()? {
        pb::CommitType::Prepaid => Some(CommitType::Prepaid),
        pb::CommitType::Postpaid => Some(CommitType::Postpaid),
        pb::CommitType::Unspecified => None,
    }
}

fn commit_type_to_wire(t: CommitType) -> pb::CommitType {
    match t {
        CommitType::Prepaid => pb::CommitType::Prepaid,
        CommitType::Postpaid => pb::CommitType::Postpaid,
    }
}

fn distribution(v: i32) -> Option<Distribution> {
    match pb::AmountDistribution::try_from(v).ok()? {
        pb::AmountDistribution::Divided => Some(Distribution::Divided),
        pb::AmountDistribution::DividedRounded => Some(Distribution::DividedRounded),
        pb::AmountDistribution::Each => Some(Distribution::Each),
        pb::AmountDistribution::Unspecified => None,
    }
}

fn distribution_to_wire(d: Distribution) -> pb::AmountDistribution {
    match d {
        Distribution::Divided => pb::AmountDistribution::Divided,
        Distribution::DividedRounded => pb::AmountDistribution::DividedRounded,
        Distribution::Each => pb::AmountDistribution::Each,
    }
}

fn frequency(v: i32) -> Option<Frequency> {
    match pb::Frequency::try_from(v).ok()? {
        pb::Frequency::Monthly => Some(Frequency::Monthly),
        pb::Frequency::Quarterly => Some(Frequency::Quarterly),
        pb::Frequency::SemiAnnual => Some(Frequency::SemiAnnual),
        pb::Frequency::Annual => Some(Frequency::Annual),
        pb::Frequency::Unspecified => None,
    }
}

fn frequency_to_wire(f: Frequency) -> pb::Frequency {
    match f {
        Frequency::Monthly => pb::Frequency::Monthly,
        Frequency::Quarterly => pb::Frequency::Quarterly,
        Frequency::SemiAnnual => pb::Frequency::SemiAnnual,
        Frequency::Annual => pb::Frequency::Annual,
    }
}

fn charge(
    v: &mut Violations,
    amount: Option<&str>,
    unit_price: Option<&str>,
    quantity: Option<&str>,
) -> ChargeDraft {
    ChargeDraft {
        amount: parsed_optional_decimal(v, "amount", amount),
        unit_price: parsed_optional_decimal(v, "unit_price", unit_price),
        quantity: parsed_optional_decimal(v, "quantity", quantity),
    }
}

fn invoice_schedule(v: &mut Violations, s: pb::InvoiceSchedule) -> InvoiceScheduleDraft {
    let credit_type = parse_credit_type(v, "credit_type", &s.credit_type);
    let items = s
        .schedule_items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            v.nested(format!("schedule_items[{i}]"), |v| InvoiceItemDraft {
                timestamp: parsed_timestamp(v, "timestamp", &item.timestamp),
                charge: charge(
                    v,
                    item.amount.as_deref(),
                    item.unit_price.as_deref(),
                    item.quantity.as_deref(),
                ),
            })
        })
        .collect();
    let recurring = s.recurring_schedule.map(|r| {
        v.nested("recurring_schedule", |v| RecurringDraft {
            distribution: parsed_enum(v, "amount_distribution", r.amount_distribution, distribution),
            starting_at: parsed_timestamp(v, "starting_at", &r.starting_at),
            ending_before: parsed_timestamp(v, "ending_before", &r.ending_before),
            frequency: parsed_enum(v, "frequency", r.frequency, frequency),
            charge: charge(v, r.amount.as_deref(), r.unit_price.as_deref(), r.quantity.as_deref()),
        })
    });
    InvoiceScheduleDraft { credit_type, do_not_invoice: s.do_not_invoice, items, recurring }
}

fn specifier(v: &mut Violations, s: pb::CommitSpecifier) -> SpecifierDraft {
    SpecifierDraft {
        product_id: parsed_id(v, "product_id", &s.product_id),
        product_tags: s.product_tags,
        pricing_group_values: s.pricing_group_values.into_iter().collect(),
        presentation_group_values: s.presentation_group_values.into_iter().collect(),
        exclude: s.exclude.into_iter().map(|e| e.product_tags).collect(),
    }
}

/// The draft of a create request, with every parse problem recorded in the returned
/// violations (rooted at `commit`).
pub fn create(req: pb::CreateCommitRequest) -> (CommitDraft, Violations) {
    let mut v = Violations::at("commit");
    let Some(c) = req.commit else {
        v.add("", "is required");
        return (CommitDraft::default(), v);
    };
    let access = c.access_schedule.clone();
    let access_credit_type = parse_credit_type(
        &mut v,
        "access_schedule.credit_type",
        access.as_ref().map_or("", |a| &a.credit_type),
    );
    let access_items = access
        .as_ref()
        .map(|a| {
            a.schedule_items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    v.nested(format!("access_schedule.schedule_items[{i}]"), |v| AccessItemDraft {
                        amount: parsed_decimal(v, "amount", &item.amount),
                        starting_at: parsed_timestamp(v, "starting_at", &item.starting_at),
                        ending_before: parsed_timestamp(v, "ending_before", &item.ending_before),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let draft = CommitDraft {
        commit_type: parsed_enum(&mut v, "type", c.r#type, commit_type),
        customer_id: parsed_id(&mut v, "customer_id", c.customer_id()),
        product_id: parsed_id(&mut v, "product_id", &c.product_id),
        priority: parsed_decimal(&mut v, "priority", &c.priority),
        access_credit_type,
        access_schedule_given: access.is_some(),
        access_items,
        invoice_schedule: c
            .invoice_schedule
            .map(|s| v.nested("invoice_schedule", |v| invoice_schedule(v, s))),
        applicable_product_ids: c
            .applicable_product_ids
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let field = format!("applicable_product_ids[{i}]");
                if p.is_empty() {
                    v.add(&field, "must be a UUID");
                    return Parsed::Invalid;
                }
                parsed_id(&mut v, &field, p)
            })
            .collect(),
        applicable_product_tags: c.applicable_product_tags,
        specifiers: c
            .specifiers
            .into_iter()
            .enumerate()
            .map(|(i, s)| v.nested(format!("specifiers[{i}]"), |v| specifier(v, s)))
            .collect(),
        applicable_contract_ids: c.applicable_contract_ids,
        custom_fields: c.custom_fields.into_iter().collect(),
        rate_type: non_empty(c.rate_type),
        name: c.name,
        description: non_empty(c.description),
        invoice_contract_id: parsed_id(&mut v, "invoice_contract_id", &c.invoice_contract_id),
        netsuite_sales_order_id: non_empty(c.netsuite_sales_order_id),
        salesforce_opportunity_id: non_empty(c.salesforce_opportunity_id),
        uniqueness_key: c.uniqueness_key,
    };
    (draft, v)
}

/// The id, etag, changes and parse problems of an update request.
pub fn update(
    req: pb::UpdateCommitRequest,
) -> Result<(CommitId, String, CommitChanges, Violations), Violations> {
    let mut v = Violations::default();
    let set = req.commit.as_ref().map_or_else(Vec::new, |c| {
        set_fields(&[
            ("name", c.name.as_ref().is_some_and(|n| !n.is_empty())),
            ("description", !c.description.is_empty()),
            ("custom_fields", !c.custom_fields.is_empty()),
            ("priority", !c.priority.is_empty()),
            ("access_end_time", c.access_end_time.is_some()),
        ])
    });
    let paths = mask_paths(&mut v, req.update_mask, &commit::MUTABLE_FIELDS, &set);
    let Some(c) = req.commit else {
        v.add("commit", "is required");
        return Err(v);
    };
    let id = parse_id(&mut v, "commit.id", &c.id);
    let mut changes = CommitChanges::default();
    v.nested("commit", |v| {
        if paths.contains(&"name") {
            check_commit_name(v, &c.name);
            changes.name = Some(c.name.clone());
        }
        if paths.contains(&"description") {
            let d = non_empty(c.description.clone());
            check_description(v, &d);
            changes.description = Some(d);
        }
        if paths.contains(&"custom_fields") {
            let fields = c.custom_fields.clone().into_iter().collect();
            check_custom_fields(v, &fields);
            changes.custom_fields = Some(fields);
        }
        if paths.contains(&"priority") {
            changes.priority = parse_decimal(v, "priority", &c.priority);
        }
        if paths.contains(&"access_end_time") {
            changes.access_end =
                parsed_timestamp(v, "access_end_time", &c.access_end_time).required(v, "access_end_time");
        }
    });
    match id {
        Some(id) => Ok((id, c.etag, changes, v)),
        None => Err(v),
    }
}

/// Filters, their fingerprint, and the page of a list request.
pub fn list(
    req: pb::ListCommitsRequest,
    tokens: TokenKey,
) -> Result<(CommitFilter, String, PageRequest), Violations> {
    let mut v = Violations::default();
    let key = format!(
        "customer={}|type={}|active_at={:?}",
        req.customer_id(),
        req.r#type,
        req.active_at.as_ref().map(|t| (t.seconds, t.nanos))
    );
    let page = PageRequest::parse(req.page_size, &req.page_token, &key, tokens, &mut v);
    let filter = CommitFilter {
        customer_id: parsed_id(&mut v, "customer_id", req.customer_id()).into_valid(),
        commit_type: parsed_enum(&mut v, "type", req.r#type, commit_type).into_valid(),
        active_at: parsed_timestamp(&mut v, "active_at", &req.active_at).into_valid(),
    };
    v.finish((filter, key, page))
}

/// Id, etag and reason of a void request.
pub fn void(req: pb::VoidCommitRequest) -> Result<(CommitId, String, Option<String>), Violations> {
    let mut v = Violations::default();
    let id = parse_id(&mut v, "id", &req.id);
    check_void_reason(&mut v, &req.reason);
    match id {
        Some(id) if v.is_empty() => Ok((id, req.etag, non_empty(req.reason))),
        _ => Err(v),
    }
}

fn charge_to_wire(c: &InvoiceCharge) -> pb::InvoiceCharge {
    pb::InvoiceCharge {
        timestamp: Some(timestamp(c.timestamp)),
        amount: decimal(c.amount),
        unit_price: decimal(c.unit_price),
        quantity: decimal(c.quantity),
    }
}

fn charge_fields(c: &commit::ChargeAmount) -> (Option<String>, Option<String>, Option<String>) {
    match *c {
        commit::ChargeAmount::Amount(a) => (Some(decimal(a)), None, None),
        commit::ChargeAmount::UnitPrice { unit_price, quantity } => {
            (None, Some(decimal(unit_price)), Some(decimal(quantity)))
        }
    }
}

pub fn commit(c: Commit) -> pb::Commit {
    let invoice_charges = c.invoice_charges().iter().map(charge_to_wire).collect();
    let access_end_time = c.access_end().map(timestamp);
    pb::Commit {
        id: c.id.to_string(),
        r#type: commit_type_to_wire(c.commit_type).into(),
        customer: customer_id(c.customer_id.to_string()),
        product_id: c.product_id.to_string(),
        priority: decimal(c.priority),
        access_schedule: Some(pb::AccessSchedule {
            credit_type: c.credit_type.clone(),
            schedule_items: c
                .access
                .iter()
                .map(|a| pb::AccessScheduleItem {
                    amount: decimal(a.amount),
                    starting_at: Some(timestamp(a.starting_at)),
                    ending_before: Some(timestamp(a.ending_before)),
                })
                .collect(),
        }),
        invoice_schedule: c.invoice_schedule.as_ref().map(|s| pb::InvoiceSchedule {
            credit_type: s.credit_type.clone(),
            do_not_invoice: s.do_not_invoice,
            schedule_items: s
                .items
                .iter()
                .map(|i| {
                    let (amount, unit_price, quantity) = charge_fields(&i.charge);
                    pb::InvoiceScheduleItem {
                        timestamp: Some(timestamp(i.timestamp)),
                        amount,
                        unit_price,
                        quantity,
                    }
                })
                .collect(),
            recurring_schedule: s.recurring.as_ref().map(|r| {
                let (amount, unit_price, quantity) = charge_fields(&r.charge);
                pb::RecurringSchedule {
                    amount_distribution: distribution_to_wire(r.distribution).into(),
                    starting_at: Some(timestamp(r.starting_at)),
                    ending_before: Some(timestamp(r.ending_before)),
                    frequency: frequency_to_wire(r.frequency).into(),
                    amount,
                    unit_price,
                    quantity,
                }
            }),
        }),
        applicable_product_ids: c.applicability.product_ids.iter().map(ToString::to_string).collect(),
        applicable_product_tags: c.applicability.product_tags.clone(),
        specifiers: c
            .applicability
            .specifiers
            .iter()
            .map(|s| pb::CommitSpecifier {
                product_id: s.product_id.map(|p| p.to_string()).unwrap_or_default(),
                product_tags: s.product_tags.clone(),
                pricing_group_values: s.pricing_group_values.clone().into_iter().collect(),
                presentation_group_values: s.presentation_group_values.clone().into_iter().collect(),
                exclude: s
                    .exclude
                    .iter()
                    .map(|e| pb::SpecifierExclusion { product_tags: e.product_tags.clone() })
                    .collect(),
            })
            .collect(),
        applicable_contract_ids: c.applicability.contract_ids.clone(),
        custom_fields: c.custom_fields.clone().into_iter().collect(),
        rate_type: c.rate_type.clone().unwrap_or_default(),
        name: c.name.clone(),
        description: c.description.clone().unwrap_or_default(),
        invoice_contract_id: c.invoice_contract_id.map(|i| i.to_string()).unwrap_or_default(),
        netsuite_sales_order_id: c.netsuite_sales_order_id.clone().unwrap_or_default(),
        salesforce_opportunity_id: c.salesforce_opportunity_id.clone().unwrap_or_default(),
        uniqueness_key: c.uniqueness_key.clone(),
        invoice_charges,
        access_end_time,
        void_time: opt_timestamp(c.voided_at),
        create_time: Some(timestamp(c.created_at)),
        update_time: Some(timestamp(c.updated_at)),
        etag: etag(c.version),
        created_by: key_id(c.by.created_by),
        updated_by: key_id(c.by.updated_by),
    }
}
