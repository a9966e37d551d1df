//! Requests name customers by id or by external id; the use cases work on ids. These
//! turn the one into the other before a use case runs (an id costs nothing, an external
//! id one lookup, a batch's external ids one lookup together).

use std::collections::HashMap;

use super::{App, AppError};
use crate::db;
use crate::domain::customer::CustomerRef;
use crate::domain::ids::{CustomerId, OrgId};

const RESOURCE: &str = "customer";

impl App {
    /// The id of the customer `r` names; NOT_FOUND for an external id the organization
    /// has no customer with (an id is checked where it is used, as before).
    pub async fn customer_id(&self, org: OrgId, r: CustomerRef) -> Result<CustomerId, AppError> {
        match r {
            CustomerRef::Id(id) => Ok(id),
            CustomerRef::ExternalId(external_id) => {
                let found = self
                    .db()
                    .transaction(org, {
                        let external_id = external_id.clone();
                        move |conn| {
                            Ok::<_, AppError>(db::customers::id_by_external_id(conn, org, &external_id)?)
                        }
                    })
                    .await?;
                found.map(CustomerId).ok_or_else(|| AppError::not_found(RESOURCE, external_id))
            }
        }
    }

    /// The customers with `external` ids, found in one query; an external id the
    /// organization has no customer with is absent.
    pub async fn customer_ids_by_external_id(
        &self,
        org: OrgId,
        mut external: Vec<String>,
    ) -> Result<HashMap<String, CustomerId>, AppError> {
        if external.is_empty() {
            return Ok(HashMap::new());
        }
        external.sort();
        external.dedup();
        let found = self
            .db()
            .transaction(org, move |conn| {
                let names: Vec<&str> = external.iter().map(String::as_str).collect();
                Ok::<_, AppError>(db::customers::ids_by_external_ids(conn, org, &names)?)
            })
            .await?;
        Ok(found.into_iter().collect())
    }
}
