//! Requests may name a customer by its external id instead of its id. Handlers turn it
//! into the id first, so the rest of each handler, and every use case, works on ids.

use tonic::Status;

use crate::app::App;
use crate::domain::customer::external_ref;
use crate::domain::ids::OrgId;
use crate::domain::validation::Violations;
use crate::proto::{CustomerOneof, NamesCustomer};

/// Names the customer of `msg` by id: an external id is looked up, NOT_FOUND when the
/// organization has no customer with it, INVALID_ARGUMENT (under `prefix`) when it is
/// not one. A message naming its customer by id, or none, is left as it is.
pub async fn by_id<M: NamesCustomer>(app: &App, org: OrgId, prefix: &str, msg: &mut M) -> Result<(), Status> {
    let external = match msg.customer_field().as_ref().map(CustomerOneof::parts) {
        Some((None, Some(external))) => external.to_owned(),
        _ => return Ok(()),
    };
    let mut v = Violations::default();
    let Some(r) = external_ref(&mut v, &format!("{prefix}customer_external_id"), &external) else {
        return Err(v.into());
    };
    let id = app.customer_id(org, r).await?;
    *msg.customer_field() = Some(M::Oneof::by_id(id.to_string()));
    Ok(())
}

/// [`by_id`] of an optional message (a resource inside a request).
pub async fn by_id_in<M: NamesCustomer>(
    app: &App,
    org: OrgId,
    prefix: &str,
    msg: &mut Option<M>,
) -> Result<(), Status> {
    match msg {
        Some(m) => by_id(app, org, prefix, m).await,
        None => Ok(()),
    }
}

/// `msg` after [`by_id`].
pub async fn resolved<M: NamesCustomer>(app: &App, org: OrgId, mut msg: M) -> Result<M, Status> {
    by_id(app, org, "", &mut msg).await?;
    Ok(msg)
}
