//! Every rule of seed 004's field descriptions, checked on a commit draft. Each breach is
//! its own field violation and all are reported together.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::schedule::{MAX_RECURRING_CHARGES, charge_times, divide};
use super::{
    AccessItem, Applicability, ChargeAmount, CommitType, Distribution, Exclusion, Frequency, InvoiceItem,
    InvoiceSchedule, NewCommit, RecurringSchedule, Specifier,
};
use crate::domain::ids::{CustomerId, ProductId};
use crate::domain::money::check_positive;
use crate::domain::text::{check_code, check_length, check_name, check_string_map};
use crate::domain::validation::{Parsed, Violations};

/// Most access segments a commit may have.
pub const MAX_ACCESS_ITEMS: usize = 100;
/// Most explicit invoice items.
pub const MAX_INVOICE_ITEMS: usize = 1000;
const MAX_LIST: usize = 100;
const MAX_CUSTOM_FIELDS: usize = 50;

/// An access item as read from the wire.
#[derive(Clone, Debug, Default)]
pub struct AccessItemDraft {
    pub amount: Parsed<Decimal>,
    pub starting_at: Parsed<DateTime<Utc>>,
    pub ending_before: Parsed<DateTime<Utc>>,
}

/// An amount, or unit price and quantity, as read from the wire.
#[derive(Clone, Debug, Default)]
pub struct ChargeDraft {
    pub amount: Parsed<Decimal>,
    pub unit_price: Parsed<Decimal>,
    pub quantity: Parsed<Decimal>,
}

/// An explicit invoice item as read from the wire.
#[derive(Clone, Debug, Default)]
pub struct InvoiceItemDraft {
    pub timestamp: Parsed<DateTime<Utc>>,
    pub charge: ChargeDraft,
}

/// A recurring schedule as read from the wire.
#[derive(Clone, Debug, Default)]
pub struct RecurringDraft {
    pub distribution: Parsed<Distribution>,
    pub starting_at: Parsed<DateTime<Utc>>,
    pub ending_before: Parsed<DateTime<Utc>>,
    pub frequency: Parsed<Frequency>,
    pub charge: ChargeDraft,
}

/// An invoice schedule as read from the wire.
#[derive(Clone, Debug, Default)]
pub struct InvoiceScheduleDraft {
    pub credit_type: String,
    pub do_not_invoice: bool,
    pub items: Vec<InvoiceItemDraft>,
    pub recurring: Option<RecurringDraft>,
}

/// A specifier as read from the wire.
#[derive(Clone, Debug, Default)]
pub struct SpecifierDraft {
    pub product_id: Parsed<ProductId>,
    pub product_tags: Vec<String>,
    pub pricing_group_values: BTreeMap<String, String>,
    pub presentation_group_values: BTreeMap<String, String>,
    pub exclude: Vec<Vec<String>>,
}

/// A commit as read from the wire: parse errors already recorded, rules not yet checked.
#[derive(Clone, Debug, Default)]
pub struct CommitDraft {
    pub commit_type: Parsed<CommitType>,
    pub customer_id: Parsed<CustomerId>,
    pub product_id: Parsed<ProductId>,
    pub priority: Parsed<Decimal>,
    pub access_credit_type: String,
    pub access_schedule_given: bool,
    pub access_items: Vec<AccessItemDraft>,
    pub invoice_schedule: Option<InvoiceScheduleDraft>,
    pub applicable_product_ids: Vec<Parsed<ProductId>>,
    pub applicable_product_tags: Vec<String>,
    pub specifiers: Vec<SpecifierDraft>,
    pub applicable_contract_ids: Vec<String>,
    pub custom_fields: BTreeMap<String, String>,
    pub rate_type: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub invoice_contract_id: Parsed<Uuid>,
    pub netsuite_sales_order_id: Option<String>,
    pub salesforce_opportunity_id: Option<String>,
    pub uniqueness_key: Option<String>,
}

/// What exists in the organization, for the rules that name other resources.
#[derive(Clone, Debug, Default)]
pub struct CommitRefs {
    pub customer_exists: bool,
    pub products: HashSet<ProductId>,
}

/// Checks every rule, adding each breach to `v`. Returns the commit only when every
/// value is valid: `None` means `v` holds violations, from here or from parsing.
pub fn validate_new(d: CommitDraft, refs: &CommitRefs, v: &mut Violations) -> Option<NewCommit> {
    let commit_type = d.commit_type.clone().required(v, "type");
    let customer_id = d.customer_id.clone().required(v, "customer_id");
    if customer_id.is_some() && !refs.customer_exists {
        v.add("customer_id", "no such customer");
    }
    let product_id = check_product_ref(v, "product_id", d.product_id.clone(), refs, true);
    let priority = d.priority.clone().required(v, "priority");

    let access = v.nested("access_schedule", |v| check_access(v, d.access_schedule_given, &d.access_items));
    let invoice = d
        .invoice_schedule
        .as_ref()
        .and_then(|s| v.nested("invoice_schedule", |v| check_invoice_schedule(v, s)));
    let invoice_contract_id = d.invoice_contract_id.clone().into_valid();

    if let Some(t) = commit_type {
        check_type_rules(v, t, &d, access.as_deref(), invoice.as_ref());
    }
    let applicability = check_applicability(v, &d, refs);
    check_custom_fields(v, &d.custom_fields);
    check_optional_text(v, &d);

    if !v.is_empty() {
        return None;
    }
    Some(NewCommit {
        customer_id: customer_id?,
        product_id: product_id?,
        commit_type: commit_type?,
        priority: priority?,
        credit_type: d.access_credit_type,
        access: access?,
        invoice_schedule: invoice,
        applicability,
        custom_fields: d.custom_fields,
        rate_type: d.rate_type,
        name: d.name,
        description: d.description,
        invoice_contract_id,
        netsuite_sales_order_id: d.netsuite_sales_order_id,
        salesforce_opportunity_id: d.salesforce_opportunity_id,
        uniqueness_key: d.uniqueness_key,
    })
}

fn check_product_ref(
    v: &mut Violations,
    field: &str,
    id: Parsed<ProductId>,
    refs: &CommitRefs,
    required: bool,
) -> Option<ProductId> {
    let id = if required { id.required(v, field) } else { id.into_valid() };
    if let Some(id) = id
        && !refs.products.contains(&id)
    {
        v.add(field, "no such product");
    }
    id
}

fn check_window(
    v: &mut Violations,
    start: &Parsed<DateTime<Utc>>,
    end: &Parsed<DateTime<Utc>>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let s = start.clone().required(v, "starting_at");
    let e = end.clone().required(v, "ending_before");
    let (s, e) = (s?, e?);
    if s >= e {
        v.add("ending_before", "must be after starting_at");
        return None;
    }
    Some((s, e))
}

fn check_access(v: &mut Violations, given: bool, items: &[AccessItemDraft]) -> Option<Vec<AccessItem>> {
    if !given {
        v.add("", "is required");
        return None;
    }
    if items.is_empty() {
        v.add("schedule_items", "must have at least one item");
        return None;
    }
    if items.len() > MAX_ACCESS_ITEMS {
        v.add("schedule_items", format!("must have at most {MAX_ACCESS_ITEMS} items"));
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let parsed = v.nested(format!("schedule_items[{i}]"), |v| {
            let amount = item.amount.clone().required(v, "amount");
            if let Some(a) = amount {
                check_positive(v, "amount", a);
            }
            let window = check_window(v, &item.starting_at, &item.ending_before);
            Some(AccessItem { amount: amount?, starting_at: window?.0, ending_before: window?.1 })
        });
        out.extend(parsed);
    }
    (out.len() == items.len()).then_some(out)
}

/// Either `amount`, or `unit_price` with `quantity`; never both forms.
fn check_charge(v: &mut Violations, c: &ChargeDraft) -> Option<ChargeAmount> {
    match (c.amount.is_present(), c.unit_price.is_present(), c.quantity.is_present()) {
        (false, false, false) => {
            v.add("amount", "is required unless unit_price and quantity are given");
            None
        }
        (true, up, q) => {
            if up {
                v.add("unit_price", "cannot be combined with amount");
            }
            if q {
                v.add("quantity", "cannot be combined with amount");
            }
            let a = c.amount.valid().copied()?;
            check_positive(v, "amount", a);
            (!up && !q).then_some(ChargeAmount::Amount(a))
        }
        (false, up, q) => {
            if !up {
                v.add("unit_price", "is required with quantity");
            }
            if !q {
                v.add("quantity", "is required with unit_price");
            }
            let (unit_price, quantity) = (c.unit_price.valid().copied()?, c.quantity.valid().copied()?);
            check_positive(v, "unit_price", unit_price);
            check_positive(v, "quantity", quantity);
            Some(ChargeAmount::UnitPrice { unit_price, quantity })
        }
    }
}

fn check_recurring(v: &mut Violations, r: &RecurringDraft) -> Option<RecurringSchedule> {
    let distribution = r.distribution.clone().required(v, "amount_distribution");
    let frequency = r.frequency.clone().required(v, "frequency");
    let window = check_window(v, &r.starting_at, &r.ending_before);
    let charge = check_charge(v, &r.charge);
    let (distribution, frequency, (starting_at, ending_before), charge) =
        (distribution?, frequency?, window?, charge?);
    let n = charge_times(starting_at, ending_before, frequency, MAX_RECURRING_CHARGES).len();
    if n > MAX_RECURRING_CHARGES {
        v.add("ending_before", format!("makes more than {MAX_RECURRING_CHARGES} charges"));
        return None;
    }
    if distribution == Distribution::DividedRounded
        && divide(charge.total(), n, true).last().is_some_and(|last| *last < Decimal::ZERO)
    {
        v.add("amount", format!("is too small to divide into {n} charges rounded to the cent"));
        return None;
    }
    Some(RecurringSchedule { distribution, starting_at, ending_before, frequency, charge })
}

fn check_invoice_schedule(v: &mut Violations, s: &InvoiceScheduleDraft) -> Option<InvoiceSchedule> {
    if s.items.is_empty() && s.recurring.is_none() {
        v.add("", "needs schedule_items or a recurring_schedule");
        return None;
    }
    if s.items.len() > MAX_INVOICE_ITEMS {
        v.add("schedule_items", format!("must have at most {MAX_INVOICE_ITEMS} items"));
        return None;
    }
    let mut items = Vec::with_capacity(s.items.len());
    for (i, item) in s.items.iter().enumerate() {
        let parsed = v.nested(format!("schedule_items[{i}]"), |v| {
            let timestamp = item.timestamp.clone().required(v, "timestamp");
            let charge = check_charge(v, &item.charge);
            Some(InvoiceItem { timestamp: timestamp?, charge: charge? })
        });
        items.extend(parsed);
    }
    let recurring = match &s.recurring {
        Some(r) => Some(v.nested("recurring_schedule", |v| check_recurring(v, r))?),
        None => None,
    };
    (items.len() == s.items.len()).then(|| InvoiceSchedule {
        credit_type: s.credit_type.clone(),
        do_not_invoice: s.do_not_invoice,
        items,
        recurring,
    })
}

/// The rules that depend on PREPAID / POSTPAID.
fn check_type_rules(
    v: &mut Violations,
    t: CommitType,
    d: &CommitDraft,
    access: Option<&[AccessItem]>,
    invoice: Option<&InvoiceSchedule>,
) {
    let contract_missing = d.invoice_contract_id.is_absent();
    match t {
        CommitType::Postpaid => {
            if d.access_items.len() > 1 {
                v.add("access_schedule.schedule_items", "must have exactly one item for a POSTPAID commit");
            }
            match &d.invoice_schedule {
                None => v.add("invoice_schedule", "is required for a POSTPAID commit"),
                Some(s) => {
                    if s.items.len() != 1 || s.recurring.is_some() {
                        v.add(
                            "invoice_schedule.schedule_items",
                            "must have exactly one item (and no recurring schedule) for a POSTPAID commit",
                        );
                    }
                    if s.credit_type != d.access_credit_type {
                        v.add("invoice_schedule.credit_type", "must equal the access schedule's credit type");
                    }
                }
            }
            if let (Some([item]), Some(schedule)) = (access, invoice)
                && schedule.items.len() == 1
                && schedule.recurring.is_none()
                && schedule.total() != item.amount
            {
                v.add("invoice_schedule.schedule_items[0]", "total must equal the access schedule amount");
            }
            if contract_missing {
                v.add("invoice_contract_id", "is required for a POSTPAID commit");
            }
        }
        CommitType::Prepaid => {
            if let Some(s) = &d.invoice_schedule
                && !s.do_not_invoice
                && contract_missing
            {
                v.add(
                    "invoice_contract_id",
                    "is required for a PREPAID commit with an invoice schedule, unless do_not_invoice is set",
                );
            }
        }
    }
}

fn check_tags(v: &mut Violations, field: &str, tags: &[String]) {
    if tags.len() > MAX_LIST {
        v.add(field, format!("must have at most {MAX_LIST} entries"));
    }
    for (i, t) in tags.iter().enumerate() {
        check_code(v, &format!("{field}[{i}]"), t, 128);
    }
}

fn check_applicability(v: &mut Violations, d: &CommitDraft, refs: &CommitRefs) -> Applicability {
    if !d.specifiers.is_empty() {
        if !d.applicable_product_ids.is_empty() {
            v.add("specifiers", "cannot be combined with applicable_product_ids");
        }
        if !d.applicable_product_tags.is_empty() {
            v.add("specifiers", "cannot be combined with applicable_product_tags");
        }
    }
    if d.applicable_product_ids.len() > MAX_LIST {
        v.add("applicable_product_ids", format!("must have at most {MAX_LIST} entries"));
    }
    let mut product_ids = Vec::new();
    for (i, id) in d.applicable_product_ids.iter().enumerate() {
        let field = format!("applicable_product_ids[{i}]");
        if let Some(id) = check_product_ref(v, &field, id.clone(), refs, false) {
            if product_ids.contains(&id) {
                v.add(&field, "is a duplicate");
            }
            product_ids.push(id);
        }
    }
    check_tags(v, "applicable_product_tags", &d.applicable_product_tags);
    check_tags(v, "applicable_contract_ids", &d.applicable_contract_ids);
    if d.specifiers.len() > MAX_LIST {
        v.add("specifiers", format!("must have at most {MAX_LIST} entries"));
    }
    let specifiers = d
        .specifiers
        .iter()
        .enumerate()
        .map(|(i, s)| v.nested(format!("specifiers[{i}]"), |v| check_specifier(v, s, refs)))
        .collect();
    Applicability {
        product_ids,
        product_tags: d.applicable_product_tags.clone(),
        specifiers,
        contract_ids: d.applicable_contract_ids.clone(),
    }
}

fn check_specifier(v: &mut Violations, s: &SpecifierDraft, refs: &CommitRefs) -> Specifier {
    let product_id = check_product_ref(v, "product_id", s.product_id.clone(), refs, false);
    check_tags(v, "product_tags", &s.product_tags);
    check_string_map(v, "pricing_group_values", &s.pricing_group_values, MAX_LIST, 256);
    check_string_map(v, "presentation_group_values", &s.presentation_group_values, MAX_LIST, 256);
    let mut exclude = Vec::new();
    for (i, tags) in s.exclude.iter().enumerate() {
        let field = format!("exclude[{i}].product_tags");
        if tags.is_empty() {
            v.add(&field, "must name at least one tag");
        }
        check_tags(v, &field, tags);
        exclude.push(Exclusion { product_tags: tags.clone() });
    }
    let spec = Specifier {
        product_id,
        product_tags: s.product_tags.clone(),
        pricing_group_values: s.pricing_group_values.clone(),
        presentation_group_values: s.presentation_group_values.clone(),
        exclude,
    };
    if spec.is_empty() && s.product_id.is_absent() {
        v.add("", "must set product_id, product_tags, pricing_group_values or presentation_group_values");
    }
    spec
}

/// Checks custom fields: at most 50, keys 1 to 128 characters, values at most 1024.
pub fn check_custom_fields(v: &mut Violations, fields: &BTreeMap<String, String>) {
    check_string_map(v, "custom_fields", fields, MAX_CUSTOM_FIELDS, 1024);
}

/// Checks a commit name when given: 1 to 200 characters (seed: minLength 1).
pub fn check_commit_name(v: &mut Violations, name: &Option<String>) {
    if let Some(name) = name {
        check_name(v, "name", name, 200);
    }
}

/// Checks a description: at most 2000 characters.
pub fn check_description(v: &mut Violations, description: &Option<String>) {
    if let Some(d) = description {
        check_length(v, "description", d, 0, 2000);
    }
}

fn check_optional_text(v: &mut Violations, d: &CommitDraft) {
    check_commit_name(v, &d.name);
    check_description(v, &d.description);
    if let Some(key) = &d.uniqueness_key {
        check_length(v, "uniqueness_key", key, 1, 128);
    }
    for (field, value) in [
        ("rate_type", &d.rate_type),
        ("netsuite_sales_order_id", &d.netsuite_sales_order_id),
        ("salesforce_opportunity_id", &d.salesforce_opportunity_id),
    ] {
        if let Some(value) = value {
            check_code(v, field, value, 128);
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
