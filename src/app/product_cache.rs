//! The catalog as the usage path reads it: products by id and by code, per instance, so
//! that an event naming its product costs no lookup. Updating or deleting a product
//! NOTIFYs `billing_products` with the organization's id, and every instance forgets
//! that organization's products; see [`NoticeCache`].

use super::notice_cache::NoticeCache;
use crate::db::listen::Channel;
use crate::db::{self, Conn, DbError};
use crate::domain::ids::{OrgId, ProductId};
use crate::domain::product::Product;
use crate::domain::usage::ProductRef;

/// Products keyed by organization and by how an event names them.
pub type ProductCache = NoticeCache<(OrgId, ProductRef), Product>;

/// The change channel for the instance's notification listener.
pub fn changes(cache: &ProductCache) -> Channel {
    cache.channel(db::products::CHANGED_CHANNEL, |payload| {
        let org = OrgId(payload.parse::<uuid::Uuid>().ok()?);
        Some(move |k: &(OrgId, ProductRef)| k.0 == org)
    })
}

/// The products of `org` among `ids` and `codes`: from the cache where it holds them,
/// the others in one statement (and kept for next time).
pub fn find(
    conn: &mut Conn,
    org: OrgId,
    cache: &ProductCache,
    ids: &[ProductId],
    codes: &[String],
) -> Result<Vec<Product>, DbError> {
    let mut found = Vec::new();
    let (mut missing_ids, mut missing_codes) = (Vec::new(), Vec::new());
    for id in ids {
        match cache.get(&(org, ProductRef::Id(*id))) {
            Some(p) => found.push(p),
            None => missing_ids.push(*id),
        }
    }
    for code in codes {
        match cache.get(&(org, ProductRef::Code(code.clone()))) {
            Some(p) => found.push(p),
            None => missing_codes.push(code.clone()),
        }
    }
    let ticket = cache.ticket();
    let loaded = db::products::get_many_by_id_or_code(conn, org, &missing_ids, &missing_codes)?;
    for p in &loaded {
        cache.put(ticket, (org, ProductRef::Id(p.id)), p.clone());
        cache.put(ticket, (org, ProductRef::Code(p.code.clone())), p.clone());
    }
    found.extend(loaded);
    Ok(found)
}
