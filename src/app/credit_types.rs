//! Custom credit types: declaring them, listing them, and the check every use case that
//! takes an amount runs so an undeclared custom type is refused where it is named.

use super::request_ids::{Operation, RequestId, remember, replay};
use super::{App, AppError, Caller, clock};
use crate::db::{self, Conn};
use crate::domain::credit_type::{CreditType, is_custom, validate_declaration};
use crate::domain::ids::OrgId;
use crate::domain::money::is_credit_type_code;
use crate::domain::page::{Page, PageRequest};
use crate::domain::validation::Violations;

const RESOURCE: &str = "credit type";
const CREATE: Operation = Operation { name: "CreateCreditType", resource: RESOURCE };

/// Records in `v` every credit type among `named` (field, upper-case code) that is not
/// an ISO 4217 currency and that the organization has not declared.
pub fn check_declared(
    conn: &mut Conn,
    org: OrgId,
    named: &[(&str, &str)],
    v: &mut Violations,
) -> Result<(), AppError> {
    // A malformed code was reported where it was parsed; only well-formed ones are looked up.
    let custom_code = |c: &str| is_credit_type_code(c) && is_custom(c);
    let custom: Vec<&str> = named.iter().map(|(_, c)| *c).filter(|c| custom_code(c)).collect();
    if custom.is_empty() {
        return Ok(());
    }
    let declared = db::credit_types::declared(conn, org, &custom)?;
    for (field, code) in named {
        if custom_code(code) && !declared.iter().any(|d| d == code) {
            v.add(field, undeclared(code));
        }
    }
    Ok(())
}

/// Why a credit type is refused.
pub fn undeclared(code: &str) -> String {
    format!("{code} is neither an ISO 4217 currency nor a credit type the organization declared")
}

impl App {
    /// Declares a custom credit type (`code` already upper-cased; its parse problems in
    /// `v`); with a request id, a retry gets the type the first call declared.
    pub async fn create_credit_type(
        &self,
        caller: Caller,
        code: String,
        name: String,
        mut v: Violations,
        request: Option<RequestId>,
    ) -> Result<CreditType, AppError> {
        v.nested("credit_type", |v| validate_declaration(&code, &name, v));
        v.finish(()).map_err(AppError::Invalid)?;
        let t =
            CreditType { code: code.clone(), name, created_at: clock::now(), created_by: Some(caller.key) };
        self.db()
            .transaction(caller.org, move |conn| {
                let org = caller.org;
                let read = |conn: &mut Conn, made: &str| {
                    db::credit_types::get(conn, org, made)?.ok_or_else(|| AppError::not_found(RESOURCE, made))
                };
                if let Some(made) = replay(conn, org, CREATE, request.as_ref(), read)? {
                    return Ok(made);
                }
                db::credit_types::insert(conn, org, &t)?;
                remember(conn, org, CREATE, request.as_ref(), &t.code)?;
                Ok::<_, AppError>(t.clone())
            })
            .await
            // The code is the credit type's id: the answer names it.
            .map_err(|e| match e.unique("credit_types_pkey", RESOURCE, "code") {
                AppError::AlreadyExists { .. } => AppError::already_exists(RESOURCE, "code", &code),
                other => other,
            })
    }

    pub async fn list_credit_types(
        &self,
        org: OrgId,
        page: PageRequest,
        filters_key: String,
    ) -> Result<Page<CreditType>, AppError> {
        let after = page.after.clone();
        let limit = page.fetch_limit();
        let rows = self
            .db()
            .transaction(org, move |conn| {
                Ok::<_, AppError>(db::credit_types::list(conn, org, after.as_deref(), limit)?)
            })
            .await?;
        Ok(Page::from_rows(rows, &page, &filters_key, |t| t.code.clone()))
    }
}
