//! The catalog as the usage path reads it: products by id and by code, per organization
//! and instance, so that an event naming a known product costs no statement. A product
//! updated or deleted anywhere is announced on `db::products::CHANGED_CHANNEL` with its
//! organization, and every instance forgets that organization's products; see
//! [`NoticeCache`] for what keeps this correct.

use std::sync::Arc;

use super::notice_cache::{CacheConfig, NoticeCache};
use crate::db::listen::{Channel, Link};
use crate::db::{self, Conn, DbError};
use crate::domain::ids::{OrgId, ProductId};
use crate::domain::product::Product;
use crate::domain::usage::ProductRef;

/// The per-instance catalog; cheap to share.
#[derive(Clone)]
pub struct ProductCache {
    products: NoticeCache<(OrgId, ProductRef), Product>,
}

impl ProductCache {
    pub fn new(config: CacheConfig) -> Self {
        Self { products: NoticeCache::new(config) }
    }

    /// The cached product `named` of `org`, if fresh.
    pub fn get(&self, org: OrgId, named: &ProductRef) -> Option<Product> {
        self.products.get(&(org, named.clone()))
    }

    /// Products cached now (each counts twice: by id and by code).
    pub fn len(&self) -> usize {
        self.products.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    /// The products of `org` among `ids` and `codes`: from the cache where it holds
    /// them, the others in one statement (and kept for next time).
    pub(super) fn find(
        &self,
        conn: &mut Conn,
        org: OrgId,
        ids: &[ProductId],
        codes: &[String],
    ) -> Result<Vec<Product>, DbError> {
        let mut found = Vec::new();
        let (mut missing_ids, mut missing_codes) = (Vec::new(), Vec::new());
        let named =
            ids.iter().map(|id| ProductRef::Id(*id)).chain(codes.iter().cloned().map(ProductRef::Code));
        for named in named {
            let key = (org, named);
            match (self.products.get(&key), key.1) {
                (Some(p), _) => found.push(p),
                (None, ProductRef::Id(id)) => missing_ids.push(id),
                (None, ProductRef::Code(code)) => missing_codes.push(code),
            }
        }
        let ticket = self.products.ticket();
        let loaded = db::products::get_many_by_id_or_code(conn, org, &missing_ids, &missing_codes)?;
        for p in &loaded {
            self.products.put(ticket, (org, ProductRef::Id(p.id)), p.clone());
            self.products.put(ticket, (org, ProductRef::Code(p.code.clone())), p.clone());
        }
        found.extend(loaded);
        Ok(found)
    }

    /// The change channel, for the instance's notification listener: a notice forgets
    /// its organization's products; one that names no organization, all of them.
    pub fn channel(&self) -> Channel {
        let (notified, linked) = (self.products.clone(), self.products.clone());
        Channel {
            name: db::products::CHANGED_CHANNEL,
            on_notify: Arc::new(move |payload| match payload.parse::<uuid::Uuid>() {
                Ok(id) => notified.forget_where(|(org, _)| *org == OrgId(id)),
                Err(_) => notified.reset(true),
            }),
            on_link: Arc::new(move |link| linked.reset(link == Link::Up)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::product::{NewProduct, ProductKind};

    fn org(n: u128) -> OrgId {
        OrgId(uuid::Uuid::from_u128(n))
    }

    fn product(code: &str) -> Product {
        let new = NewProduct {
            code: code.into(),
            name: code.into(),
            tags: Vec::new(),
            service_type: None,
            service_family: None,
            kind: ProductKind::Service,
        };
        Product::create(ProductId(uuid::Uuid::now_v7()), new, chrono::Utc::now(), None)
    }

    /// A cache holding product `code` of `org` by its code, as `find` leaves it.
    fn holding(cache: &ProductCache, org: OrgId, code: &str) {
        let ticket = cache.products.ticket();
        cache.products.put(ticket, (org, ProductRef::Code(code.into())), product(code));
    }

    #[test]
    fn a_notice_forgets_the_products_of_its_organization_only() {
        let cache = ProductCache::new(CacheConfig::default());
        (cache.channel().on_link)(Link::Up);
        holding(&cache, org(1), "A");
        holding(&cache, org(2), "B");
        (cache.channel().on_notify)(&org(1).0.to_string());
        assert_eq!(cache.get(org(1), &ProductRef::Code("A".into())), None);
        assert!(cache.get(org(2), &ProductRef::Code("B".into())).is_some(), "another org's stay");
    }

    #[test]
    fn an_unreadable_notice_or_a_dropped_link_forgets_every_product() {
        let cache = ProductCache::new(CacheConfig::default());
        (cache.channel().on_link)(Link::Up);
        holding(&cache, org(1), "A");
        (cache.channel().on_notify)("not an org");
        assert!(cache.is_empty());

        holding(&cache, org(1), "A");
        assert_eq!(cache.len(), 1);
        (cache.channel().on_link)(Link::Down);
        assert!(cache.is_empty());
        holding(&cache, org(1), "A");
        assert!(cache.is_empty(), "nothing is kept while notices are missed");
    }
}
