//! Which usage a commit applies to: product ids, product tags, specifiers (with
//! exclusions) and contracts, as the seed's field descriptions define them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::ids::ProductId;

/// Excludes products carrying all of `product_tags`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    pub product_tags: Vec<String>,
}

/// A filter on usage; every criterion given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Specifier {
    pub product_id: Option<ProductId>,
    pub product_tags: Vec<String>,
    pub pricing_group_values: BTreeMap<String, String>,
    pub presentation_group_values: BTreeMap<String, String>,
    pub exclude: Vec<Exclusion>,
}

/// What a commit applies to. All empty means every product and contract.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applicability {
    pub product_ids: Vec<ProductId>,
    pub product_tags: Vec<String>,
    pub specifiers: Vec<Specifier>,
    pub contract_ids: Vec<String>,
}

/// The facts about one usage that applicability is judged on.
#[derive(Clone, Copy, Debug)]
pub struct UsageFacts<'a> {
    pub product_id: ProductId,
    pub product_tags: &'a [String],
    pub group_values: &'a BTreeMap<String, String>,
    pub contract_id: Option<&'a str>,
}

fn has_all(have: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|t| have.contains(t))
}

fn includes(have: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|(k, v)| have.get(k) == Some(v))
}

impl Specifier {
    /// True when the usage meets every criterion and no exclusion.
    pub fn matches(&self, u: &UsageFacts<'_>) -> bool {
        let included = self.product_id.is_none_or(|p| p == u.product_id)
            && has_all(u.product_tags, &self.product_tags)
            && includes(u.group_values, &self.pricing_group_values)
            && includes(u.group_values, &self.presentation_group_values);
        let excluded = self
            .exclude
            .iter()
            .any(|e| !e.product_tags.is_empty() && has_all(u.product_tags, &e.product_tags));
        included && !excluded
    }

    /// A specifier with no criterion would match all usage; the seed gives none such.
    pub fn is_empty(&self) -> bool {
        self.product_id.is_none()
            && self.product_tags.is_empty()
            && self.pricing_group_values.is_empty()
            && self.presentation_group_values.is_empty()
    }
}

impl Applicability {
    /// True when usage with these facts may draw the commit down.
    pub fn applies_to(&self, u: &UsageFacts<'_>) -> bool {
        let contract_ok = self.contract_ids.is_empty()
            || u.contract_id.is_some_and(|c| self.contract_ids.iter().any(|x| x == c));
        if !contract_ok {
            return false;
        }
        if !self.specifiers.is_empty() {
            return self.specifiers.iter().any(|s| s.matches(u));
        }
        if self.product_ids.is_empty() && self.product_tags.is_empty() {
            return true;
        }
        self.product_ids.contains(&u.product_id)
            || self.product_tags.iter().any(|t| u.product_tags.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        product: ProductId,
        tags: &'a [String],
        groups: &'a BTreeMap<String, String>,
        contract: Option<&'a str>,
    ) -> UsageFacts<'a> {
        UsageFacts { product_id: product, product_tags: tags, group_values: groups, contract_id: contract }
    }

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn empty_applicability_applies_to_every_product() {
        let groups = BTreeMap::new();
        assert!(Applicability::default().applies_to(&facts(ProductId::generate(), &[], &groups, None)));
    }

    #[test]
    fn product_ids_or_any_tag_select_products() {
        let p = ProductId::generate();
        let a = Applicability { product_ids: vec![p], product_tags: tags(&["vod"]), ..Default::default() };
        let groups = BTreeMap::new();
        assert!(a.applies_to(&facts(p, &[], &groups, None)));
        assert!(a.applies_to(&facts(ProductId::generate(), &tags(&["vod", "x"]), &groups, None)));
        assert!(!a.applies_to(&facts(ProductId::generate(), &tags(&["fuel"]), &groups, None)));
    }

    #[test]
    fn specifier_needs_all_its_tags_and_group_values() {
        let s = Specifier {
            product_tags: tags(&["vod", "hd"]),
            pricing_group_values: BTreeMap::from([("region".into(), "EU".into())]),
            ..Default::default()
        };
        let a = Applicability { specifiers: vec![s], ..Default::default() };
        let eu = BTreeMap::from([("region".to_string(), "EU".to_string())]);
        let us = BTreeMap::from([("region".to_string(), "US".to_string())]);
        let p = ProductId::generate();
        assert!(a.applies_to(&facts(p, &tags(&["vod", "hd"]), &eu, None)));
        assert!(!a.applies_to(&facts(p, &tags(&["vod"]), &eu, None)), "missing one tag");
        assert!(!a.applies_to(&facts(p, &tags(&["vod", "hd"]), &us, None)), "other group value");
    }

    #[test]
    fn exclusion_removes_products_with_all_its_tags() {
        let s = Specifier {
            product_tags: tags(&["vod"]),
            exclude: vec![Exclusion { product_tags: tags(&["adult", "premium"]) }],
            ..Default::default()
        };
        let a = Applicability { specifiers: vec![s], ..Default::default() };
        let g = BTreeMap::new();
        let p = ProductId::generate();
        assert!(a.applies_to(&facts(p, &tags(&["vod", "adult"]), &g, None)), "only one excluded tag");
        assert!(!a.applies_to(&facts(p, &tags(&["vod", "adult", "premium"]), &g, None)));
    }

    #[test]
    fn usage_meeting_any_one_specifier_applies() {
        let p1 = ProductId::generate();
        let p2 = ProductId::generate();
        let a = Applicability {
            specifiers: vec![
                Specifier { product_id: Some(p1), ..Default::default() },
                Specifier { product_id: Some(p2), ..Default::default() },
            ],
            ..Default::default()
        };
        let g = BTreeMap::new();
        assert!(a.applies_to(&facts(p2, &[], &g, None)));
        assert!(!a.applies_to(&facts(ProductId::generate(), &[], &g, None)));
    }

    #[test]
    fn contract_limited_commit_needs_a_matching_contract() {
        let a = Applicability { contract_ids: vec!["c-1".into()], ..Default::default() };
        let g = BTreeMap::new();
        let p = ProductId::generate();
        assert!(a.applies_to(&facts(p, &[], &g, Some("c-1"))));
        assert!(!a.applies_to(&facts(p, &[], &g, Some("c-2"))));
        assert!(!a.applies_to(&facts(p, &[], &g, None)));
    }

    #[test]
    fn product_ids_alone_select_only_those_products() {
        let p = ProductId::generate();
        let a = Applicability { product_ids: vec![p], ..Default::default() };
        let g = BTreeMap::new();
        assert!(a.applies_to(&facts(p, &[], &g, None)));
        assert!(!a.applies_to(&facts(ProductId::generate(), &tags(&["vod"]), &g, None)));
    }
}
