//! Allowance limit use cases: get, replace, update with the seed's actions, delete.

use std::collections::HashSet;

use super::credit_types::check_declared;
use super::{App, AppError, clock};
use crate::db::{self, Conn, acting_key};
use crate::domain::allowance::{
    AllowanceChange, AllowanceLimits, LimitSettings, LimitsUpdate, Selector, apply_update, check_services,
};
use crate::domain::etag::etag_matches;
use crate::domain::ids::{ApiKeyId, CustomerId, OrgId};
use crate::domain::validation::Violations;

const RESOURCE: &str = "allowance limits";

/// Locks the customer and its current limits, checking the caller's etag against them.
fn lock_limits(
    conn: &mut Conn,
    org: OrgId,
    customer: CustomerId,
    etag: &str,
) -> Result<Option<AllowanceLimits>, AppError> {
    if !db::customers::lock(conn, org, customer)? {
        return Err(AppError::not_found("customer", customer));
    }
    let current = db::allowances::get(conn, org, customer, true)?;
    let version = current.as_ref().map_or(0, |l| l.version);
    if !etag.is_empty() && (current.is_none() || !etag_matches(etag, version)) {
        return Err(AppError::EtagMismatch { resource: RESOURCE });
    }
    Ok(current)
}

/// The product codes (of `codes`) that exist in the org.
fn existing_codes(conn: &mut Conn, org: OrgId, codes: Vec<String>) -> Result<HashSet<String>, AppError> {
    if codes.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(db::products::get_many_by_code(conn, org, &codes)?.into_iter().map(|p| p.code).collect())
}

fn service_codes<'a>(selectors: impl Iterator<Item = &'a Selector>) -> Vec<String> {
    selectors
        .filter_map(|s| match s {
            Selector::Service(code) => Some(code.clone()),
            _ => None,
        })
        .collect()
}

/// Stores `settings` as the customer's limits, one version after `current`.
fn store(
    conn: &mut Conn,
    org: OrgId,
    customer: CustomerId,
    current: Option<AllowanceLimits>,
    settings: LimitSettings,
    acting: Option<ApiKeyId>,
) -> Result<AllowanceLimits, AppError> {
    let limits = AllowanceLimits::next(current.as_ref(), customer, settings, clock::now(), acting);
    db::allowances::put(conn, org, &limits)?;
    Ok(limits)
}

impl App {
    pub async fn get_allowance_limits(
        &self,
        org: OrgId,
        customer: CustomerId,
    ) -> Result<AllowanceLimits, AppError> {
        self.db()
            .transaction(org, move |conn| {
                db::allowances::get(conn, org, customer, false)?
                    .ok_or_else(|| AppError::not_found(RESOURCE, customer))
            })
            .await
    }

    /// Sets the customer's limits to `settings` (whose parse problems are in `v`).
    pub async fn replace_allowance_limits(
        &self,
        org: OrgId,
        customer: CustomerId,
        etag: String,
        settings: LimitSettings,
        v: Violations,
    ) -> Result<AllowanceLimits, AppError> {
        let acting = acting_key::current();
        self.db()
            .transaction(org, move |conn| {
                let current = lock_limits(conn, org, customer, &etag)?;
                let codes =
                    existing_codes(conn, org, service_codes(settings.services.iter().map(|s| &s.selector)))?;
                let mut v = v.clone();
                check_declared(conn, org, &[("limits.currency", &settings.currency)], &mut v)?;
                check_services(&mut v, "limits.usage_services_allowance", &settings.services, &codes);
                v.finish(())?;
                store(conn, org, customer, current, settings.clone(), acting)
            })
            .await
    }

    /// Applies an update as the seed does, all or nothing (`v`: its parse problems).
    pub async fn update_allowance_limits(
        &self,
        org: OrgId,
        customer: CustomerId,
        etag: String,
        update: LimitsUpdate,
        v: Violations,
    ) -> Result<AllowanceLimits, AppError> {
        let acting = acting_key::current();
        self.db()
            .transaction(org, move |conn| {
                let current = lock_limits(conn, org, customer, &etag)?;
                let added = update.changes.iter().filter_map(|c| match c {
                    AllowanceChange::Add(a) => Some(&a.selector),
                    _ => None,
                });
                let codes = existing_codes(conn, org, service_codes(added))?;
                let mut v = v.clone();
                if let Some(currency) = &update.currency {
                    check_declared(conn, org, &[("currency", currency)], &mut v)?;
                }
                for (i, change) in update.changes.iter().enumerate() {
                    if let AllowanceChange::Add(a) = change {
                        crate::domain::allowance::check_selector(
                            &mut v,
                            &format!("usage_services_allowance[{i}].allowance.service"),
                            &a.selector,
                            &codes,
                        );
                    }
                }
                let settings = apply_update(
                    current.as_ref().map(|c| &c.settings),
                    update.clone(),
                    "usage_services_allowance",
                    &mut v,
                );
                v.finish(())?;
                store(conn, org, customer, current, settings, acting)
            })
            .await
    }

    pub async fn delete_allowance_limits(
        &self,
        org: OrgId,
        customer: CustomerId,
        etag: String,
    ) -> Result<(), AppError> {
        self.db()
            .transaction(org, move |conn| {
                if lock_limits(conn, org, customer, &etag)?.is_none() {
                    return Err(AppError::not_found(RESOURCE, customer));
                }
                db::allowances::delete(conn, org, customer)?;
                Ok(())
            })
            .await
    }
}
