//! Customers: the accounts every commercial term belongs to.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::authorship::Authorship;
use super::ids::{ApiKeyId, CustomerId};
use super::text::{check_code, check_name};
use super::validation::Violations;

/// How a request names a customer: by id, or by the caller's own identifier for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CustomerRef {
    Id(CustomerId),
    ExternalId(String),
}

/// Checks an external id a request names a customer by (under `field`); `None` when it
/// could name none.
pub fn external_ref(v: &mut Violations, field: &str, external_id: &str) -> Option<CustomerRef> {
    let before = v.items().len();
    check_code(v, field, external_id, MAX_EXTERNAL_ID);
    (v.items().len() == before).then(|| CustomerRef::ExternalId(external_id.to_owned()))
}

/// A customer as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Customer {
    pub id: CustomerId,
    pub external_id: String,
    pub name: String,
    pub time_zone: Tz,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub by: Authorship,
}

/// Customer fields as sent by a caller, not yet checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomerDraft {
    pub external_id: String,
    pub name: String,
    /// IANA name; empty means UTC.
    pub time_zone: String,
}

/// A valid new customer.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCustomer {
    pub external_id: String,
    pub name: String,
    pub time_zone: Tz,
}

/// Valid changes to a customer; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomerChanges {
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub time_zone: Option<Tz>,
}

/// Filters of a customer listing; `None` does not filter.
#[derive(Clone, Debug, Default)]
pub struct CustomerFilter {
    pub external_id: Option<String>,
    pub time_zone: Option<String>,
}

/// Mutable fields, as named in an update mask.
pub const MUTABLE_FIELDS: [&str; 3] = ["external_id", "name", "time_zone"];

const MAX_EXTERNAL_ID: usize = 128;
const MAX_NAME: usize = 200;

/// Parses an IANA time zone name; empty means UTC.
pub fn parse_time_zone(v: &mut Violations, field: &str, value: &str) -> Tz {
    if value.is_empty() {
        return Tz::UTC;
    }
    value.parse::<Tz>().unwrap_or_else(|_| {
        v.add(field, "must be an IANA time zone name such as \"Europe/Athens\"");
        Tz::UTC
    })
}

/// Checks a draft for creation; every problem goes to `v`.
pub fn validate_new(draft: CustomerDraft, v: &mut Violations) -> NewCustomer {
    check_code(v, "external_id", &draft.external_id, MAX_EXTERNAL_ID);
    check_name(v, "name", &draft.name, MAX_NAME);
    let time_zone = parse_time_zone(v, "time_zone", &draft.time_zone);
    NewCustomer { external_id: draft.external_id, name: draft.name, time_zone }
}

/// Checks the fields of `draft` named in `mask` (paths of [`MUTABLE_FIELDS`]).
pub fn validate_changes(draft: CustomerDraft, mask: &[&str], v: &mut Violations) -> CustomerChanges {
    let mut changes = CustomerChanges::default();
    if mask.contains(&"external_id") {
        check_code(v, "external_id", &draft.external_id, MAX_EXTERNAL_ID);
        changes.external_id = Some(draft.external_id);
    }
    if mask.contains(&"name") {
        check_name(v, "name", &draft.name, MAX_NAME);
        changes.name = Some(draft.name);
    }
    if mask.contains(&"time_zone") {
        changes.time_zone = Some(parse_time_zone(v, "time_zone", &draft.time_zone));
    }
    changes
}

impl Customer {
    /// The customer that `new` describes, created at `now` with `key`.
    pub fn create(id: CustomerId, new: NewCustomer, now: DateTime<Utc>, key: Option<ApiKeyId>) -> Self {
        Self {
            id,
            external_id: new.external_id,
            name: new.name,
            time_zone: new.time_zone,
            created_at: now,
            updated_at: now,
            version: 1,
            by: Authorship::created(key),
        }
    }

    /// This customer with `changes` applied at `now` with `key`, one version later.
    pub fn apply(&self, changes: CustomerChanges, now: DateTime<Utc>, key: Option<ApiKeyId>) -> Self {
        Self {
            id: self.id,
            external_id: changes.external_id.unwrap_or_else(|| self.external_id.clone()),
            name: changes.name.unwrap_or_else(|| self.name.clone()),
            time_zone: changes.time_zone.unwrap_or(self.time_zone),
            created_at: self.created_at,
            updated_at: now,
            version: self.version + 1,
            by: self.by.changed(key),
        }
    }

    /// Whether becoming `next` is allowed while the customer `has_limits`. Daily and
    /// monthly totals are kept per local calendar window: moving the time zone under
    /// them would open fresh windows that forget usage already counted in the
    /// overlapping local day, so the time zone may change only while no limits are set.
    pub fn may_become(&self, next: &Customer, has_limits: bool) -> bool {
        !has_limits || self.time_zone == next.time_zone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(external_id: &str, name: &str, tz: &str) -> CustomerDraft {
        CustomerDraft { external_id: external_id.into(), name: name.into(), time_zone: tz.into() }
    }

    #[test]
    fn an_external_id_names_a_customer_only_when_it_could_be_one() {
        let mut v = Violations::default();
        let named = external_ref(&mut v, "customer_external_id", "ACR0000001392");
        assert_eq!(named, Some(CustomerRef::ExternalId("ACR0000001392".into())));
        assert!(v.is_empty());
        for bad in ["", " ACR1", &"x".repeat(MAX_EXTERNAL_ID + 1)] {
            let mut v = Violations::at("event");
            assert_eq!(external_ref(&mut v, "customer_external_id", bad), None, "{bad:?}");
            let fields: Vec<_> = v.items().iter().map(|i| i.field.clone()).collect();
            assert_eq!(fields, ["event.customer_external_id"], "{bad:?}");
        }
        let mut earlier = Violations::default();
        earlier.add("quantity", "is bad");
        assert!(
            external_ref(&mut earlier, "customer_external_id", "ACR1").is_some(),
            "others' problems are theirs"
        );
    }

    #[test]
    fn the_time_zone_may_change_only_while_no_limits_are_set() {
        let mut v = Violations::default();
        let c = Customer::create(
            CustomerId(uuid::Uuid::nil()),
            validate_new(draft("A", "A", ""), &mut v),
            Utc::now(),
            None,
        );
        let tokyo = c.apply(
            CustomerChanges { time_zone: Some("Asia/Tokyo".parse().unwrap()), ..Default::default() },
            Utc::now(),
            None,
        );
        let renamed =
            c.apply(CustomerChanges { name: Some("B".into()), ..Default::default() }, Utc::now(), None);
        assert!(!c.may_become(&tokyo, true));
        assert!(c.may_become(&tokyo, false));
        assert!(c.may_become(&renamed, true));
    }

    #[test]
    fn new_customer_defaults_to_utc() {
        let mut v = Violations::default();
        assert_eq!(validate_new(draft("ACR1", "A", ""), &mut v).time_zone, Tz::UTC);
        assert!(v.is_empty());
    }

    #[test]
    fn new_customer_reports_every_bad_field() {
        let mut v = Violations::at("customer");
        validate_new(draft("", "", "Mars/Olympus"), &mut v);
        let bad: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
        assert_eq!(bad, ["customer.external_id", "customer.name", "customer.time_zone"]);
    }

    #[test]
    fn changes_check_only_masked_fields_and_bump_the_version() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let mut v = Violations::default();
        let current =
            Customer::create(CustomerId::generate(), validate_new(draft("A", "Old", ""), &mut v), now, None);
        let changes = validate_changes(draft("", "New", "bogus"), &["name"], &mut v);
        assert!(v.is_empty(), "unmasked bad fields are ignored: {v}");
        let next = current.apply(changes, now, None);
        assert_eq!((next.name.as_str(), next.external_id.as_str()), ("New", "A"));
        assert_eq!(next.version, 2);
    }
}
