//! Promo messages <-> domain values.

use crate::app::credit::AppliedView;
use crate::app::promos::{Basket, BasketEvaluation};
use crate::db::promos::PromoFilter;
use crate::domain::credit::{ApplicationDraft, CreditPromotion, CreditPromotionDraft, Cycle};
use crate::domain::etag::etag;
use crate::domain::ids::{PromoId, RewardId};
use crate::domain::money::parse_credit_type;
use crate::domain::page::PageRequest;
use crate::domain::promo::{
    self, BasketLine, BillingPromo, PromoChanges, PromoDraft, PromoType, Reward, SkipReason, check_lines,
};
use crate::domain::seal::TokenKey;
use crate::domain::validation::{Parsed, Violations};
use crate::grpc::convert::{
    decimal, key_id, mask_paths, non_empty, opt_timestamp, parse_id, parsed_decimal, parsed_enum, parsed_id,
    parsed_optional_decimal, parsed_timestamp, set_fields, timestamp,
};
use crate::grpc::product::mapping::{kind_from_wire, kind_to_wire};
use crate::proto::customer_id;
use crate::proto::v1 as pb;

fn promo_type(v: i32) -> Option<PromoType> {
    match pb::BillingPromoType::try_from(v).ok()? {
        pb::BillingPromoType::Rewards => Some(PromoType::Rewards),
        pb::BillingPromoType::BuyNTakeM => Some(PromoType::BuyNTakeM),
        pb::BillingPromoType::Unspecified => None,
    }
}

fn promo_type_to_wire(t: PromoType) -> pb::BillingPromoType {
    match t {
        PromoType::Rewards => pb::BillingPromoType::Rewards,
        PromoType::BuyNTakeM => pb::BillingPromoType::BuyNTakeM,
    }
}

/// The draft of a create request, with its parse problems (rooted at `promo`).
pub fn create(req: pb::CreateBillingPromoRequest) -> (PromoDraft, Violations) {
    let mut v = Violations::at("promo");
    let Some(p) = req.promo else {
        v.add("", "is required");
        return (PromoDraft::default(), v);
    };
    let draft = PromoDraft {
        promo_type: parsed_enum(&mut v, "type", p.r#type, promo_type),
        validity_start: parsed_timestamp(&mut v, "validity_start_time", &p.validity_start_time),
        validity_end: parsed_timestamp(&mut v, "validity_end_time", &p.validity_end_time),
        product_type: parsed_enum(&mut v, "product_type", p.product_type, kind_from_wire),
        product: parsed_id(&mut v, "product", &p.product),
        product_n: p.product_n,
        reward_product_type: parsed_enum(
            &mut v,
            "reward_product_type",
            p.reward_product_type,
            kind_from_wire,
        ),
        reward_product: parsed_id(&mut v, "reward_product", &p.reward_product),
        reward_product_m: p.reward_product_m,
        created_at: parsed_timestamp(&mut v, "create_time", &p.create_time),
    };
    (draft, v)
}

/// Id, etag, changes and parse problems of an update request.
pub fn update(
    req: pb::UpdateBillingPromoRequest,
) -> Result<(PromoId, String, PromoChanges, Violations), Violations> {
    let mut v = Violations::default();
    let set = req.promo.as_ref().map_or_else(Vec::new, |p| {
        set_fields(&[
            ("validity_start_time", p.validity_start_time.is_some()),
            ("validity_end_time", p.validity_end_time.is_some()),
            ("product_n", p.product_n.is_some()),
            ("reward_product_type", p.reward_product_type != 0),
            ("reward_product", !p.reward_product.is_empty()),
            ("reward_product_m", p.reward_product_m.is_some()),
        ])
    });
    let paths = mask_paths(&mut v, req.update_mask, &promo::MUTABLE_FIELDS, &set);
    let Some(p) = req.promo else {
        v.add("promo", "is required");
        return Err(v);
    };
    let id = parse_id(&mut v, "promo.id", &p.id);
    let mut c = PromoChanges::default();
    v.nested("promo", |v| {
        if paths.contains(&"validity_start_time") {
            c.validity_start = parsed_timestamp(v, "validity_start_time", &p.validity_start_time)
                .required(v, "validity_start_time");
        }
        if paths.contains(&"validity_end_time") {
            c.validity_end =
                Some(parsed_timestamp(v, "validity_end_time", &p.validity_end_time).into_valid());
        }
        if paths.contains(&"product_n") {
            c.product_n = Some(p.product_n.unwrap_or(0));
        }
        if paths.contains(&"reward_product_m") {
            c.reward_product_m = Some(p.reward_product_m.unwrap_or(0));
        }
        if paths.contains(&"reward_product_type") {
            c.reward_product_type =
                parsed_enum(v, "reward_product_type", p.reward_product_type, kind_from_wire)
                    .required(v, "reward_product_type");
        }
        if paths.contains(&"reward_product") {
            c.reward_product =
                parsed_id(v, "reward_product", &p.reward_product).required(v, "reward_product");
        }
    });
    match id {
        Some(id) => Ok((id, p.etag, c, v)),
        None => Err(v),
    }
}

pub fn list(
    req: pb::ListBillingPromosRequest,
    tokens: TokenKey,
) -> Result<(PromoFilter, String, PageRequest), Violations> {
    let mut v = Violations::default();
    let key = format!(
        "type={}|product={}|active={:?}",
        req.r#type,
        req.product,
        req.active_at.as_ref().map(|t| (t.seconds, t.nanos))
    );
    let page = PageRequest::parse(req.page_size, &req.page_token, &key, tokens, &mut v);
    let filter = PromoFilter {
        promo_type: parsed_enum(&mut v, "type", req.r#type, promo_type).into_valid(),
        product: parsed_id(&mut v, "product", &req.product).into_valid(),
        active_at: parsed_timestamp(&mut v, "active_at", &req.active_at).into_valid(),
    };
    v.finish((filter, key, page))
}

pub fn promo(p: BillingPromo) -> pb::BillingPromo {
    pb::BillingPromo {
        id: p.id.to_string(),
        r#type: promo_type_to_wire(p.promo_type).into(),
        validity_start_time: Some(timestamp(p.validity_start)),
        validity_end_time: opt_timestamp(p.validity_end),
        product_type: kind_to_wire(p.product_type).into(),
        product: p.product.to_string(),
        product_n: Some(p.product_n),
        reward_product_type: kind_to_wire(p.reward_product_type).into(),
        reward_product: p.reward_product.to_string(),
        reward_product_m: Some(p.reward_product_m),
        create_time: Some(timestamp(p.created_at)),
        created_by: p.created_by.to_string(),
        updated_by: key_id(p.updated_by),
        update_time: Some(timestamp(p.updated_at)),
        etag: etag(p.version),
    }
}

/// The basket of an EvaluateBasket request.
pub fn basket(req: pb::EvaluateBasketRequest) -> Result<Basket, Violations> {
    let mut v = Violations::default();
    let customer = parse_id(&mut v, "customer_id", req.customer_id());
    let lines: Vec<Parsed<BasketLine>> = req
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let product = parse_id(&mut v, &format!("lines[{i}].product_id"), &l.product_id);
            Parsed::from_parse(true, product.map(|product| BasketLine { product, quantity: l.quantity }))
        })
        .collect();
    check_lines(&mut v, &lines);
    let at = parsed_timestamp(&mut v, "at", &req.at).into_valid();
    let basket_id = non_empty(req.basket_id);
    if let Some(id) = &basket_id {
        crate::domain::text::check_code(&mut v, "basket_id", id, 128);
    }
    match customer {
        Some(customer) if v.is_empty() => Ok(Basket {
            customer,
            lines: lines.into_iter().filter_map(Parsed::into_valid).collect(),
            at,
            basket_id,
        }),
        _ => Err(v),
    }
}

fn skip_to_wire(r: SkipReason) -> pb::SkipReason {
    match r {
        SkipReason::Expired => pb::SkipReason::Expired,
        SkipReason::NotYetValid => pb::SkipReason::NotYetValid,
        SkipReason::QuantityTooLow => pb::SkipReason::QuantityTooLow,
        SkipReason::NothingToMakeFree => pb::SkipReason::NothingToMakeFree,
    }
}

pub fn reward(r: Reward) -> pb::Reward {
    pb::Reward {
        id: r.id.to_string(),
        customer_id: r.customer.to_string(),
        promo_id: r.promo.to_string(),
        product_id: r.product.to_string(),
        units: r.units,
        redeemed_units: r.redeemed_units,
        available_units: r.available(),
        basket_id: r.basket_id.clone(),
        grant_time: Some(timestamp(r.granted_at)),
    }
}

pub fn evaluation(e: BasketEvaluation) -> pb::EvaluateBasketResponse {
    pb::EvaluateBasketResponse {
        applied: e
            .outcome
            .applied
            .iter()
            .map(|a| pb::AppliedBillingPromo {
                promo_id: a.promo_id.to_string(),
                r#type: promo_type_to_wire(a.promo_type).into(),
                product: a.product.to_string(),
                reward_product: a.reward_product.to_string(),
                groups: a.groups,
                units: a.units,
            })
            .collect(),
        skipped: e
            .outcome
            .skipped
            .iter()
            .map(|s| pb::SkippedBillingPromo {
                promo_id: s.promo_id.to_string(),
                reason: skip_to_wire(s.reason).into(),
                message: s.message.clone(),
            })
            .collect(),
        lines: e
            .outcome
            .lines
            .iter()
            .map(|l| pb::BasketLineOutcome {
                product_id: l.product.to_string(),
                quantity: l.quantity,
                free_units: l.free_units,
                payable_units: l.quantity - l.free_units,
            })
            .collect(),
        rewards: e.rewards.into_iter().map(reward).collect(),
        replayed: e.replayed,
    }
}

/// Reward, units and request id of a redemption.
pub fn redeem(req: pb::RedeemRewardRequest) -> Result<(RewardId, i64, String), Violations> {
    let mut v = Violations::default();
    let reward = parse_id(&mut v, "reward_id", &req.reward_id);
    if req.units < 1 {
        v.add("units", "must be at least 1");
    }
    crate::domain::text::check_code(&mut v, "request_id", &req.request_id, 128);
    match reward {
        Some(r) if v.is_empty() => Ok((r, req.units, req.request_id)),
        _ => Err(v),
    }
}

fn cycle(c: i32) -> Option<Cycle> {
    match pb::CreditCycle::try_from(c).ok()? {
        pb::CreditCycle::Unspecified | pb::CreditCycle::Monthly => Some(Cycle::Monthly),
        pb::CreditCycle::Quarterly => Some(Cycle::Quarterly),
        pb::CreditCycle::Annual => Some(Cycle::Annual),
    }
}

fn cycle_to_wire(c: Cycle) -> pb::CreditCycle {
    match c {
        Cycle::Monthly => pb::CreditCycle::Monthly,
        Cycle::Quarterly => pb::CreditCycle::Quarterly,
        Cycle::Annual => pb::CreditCycle::Annual,
    }
}

/// The draft of a CreateCreditPromotion request (rooted at `promotion`).
pub fn credit_promotion(req: pb::CreateCreditPromotionRequest) -> (CreditPromotionDraft, Violations) {
    let mut v = Violations::at("promotion");
    let p = req.promotion.unwrap_or_default();
    let c = cycle(p.cycle).unwrap_or_else(|| {
        v.add("cycle", "is not a known cycle");
        Cycle::Monthly
    });
    let draft = CreditPromotionDraft {
        name: p.name,
        credit_type: parse_credit_type(&mut v, "credit_type", &p.credit_type),
        amount_per_cycle: parsed_optional_decimal(&mut v, "amount_per_cycle", p.amount_per_cycle.as_deref()),
        total_amount: parsed_optional_decimal(&mut v, "total_amount", p.total_amount.as_deref()),
        cycle: c,
        product_ids: p
            .applicable_product_ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                Parsed::from_parse(true, parse_id(&mut v, &format!("applicable_product_ids[{i}]"), id))
            })
            .collect(),
        product_tags: p.applicable_product_tags,
    };
    (draft, v)
}

pub fn credit_promotion_to_wire(p: CreditPromotion) -> pb::CreditPromotion {
    pb::CreditPromotion {
        id: p.id.to_string(),
        name: p.name,
        credit_type: p.credit_type,
        amount_per_cycle: p.amount_per_cycle.map(decimal),
        total_amount: p.total_amount.map(decimal),
        cycle: cycle_to_wire(p.cycle).into(),
        applicable_product_ids: p.applicability.product_ids.iter().map(ToString::to_string).collect(),
        applicable_product_tags: p.applicability.product_tags,
        create_time: Some(timestamp(p.created_at)),
        created_by: key_id(p.by.created_by),
        updated_by: key_id(p.by.updated_by),
    }
}

/// An application draft from the wire, recording parse problems in `v`.
pub fn application(v: &mut Violations, a: &pb::AppliedPromotion) -> ApplicationDraft {
    let range = a.applied_time_range.unwrap_or_default();
    ApplicationDraft {
        customer: parsed_id(v, "customer_id", a.customer_id()),
        promotion: parsed_id(v, "promotion_id", &a.promotion_id),
        product: parsed_id(v, "product_id", &a.product_id),
        priority: parsed_decimal(v, "priority", &a.priority),
        starts_at: parsed_timestamp(v, "applied_time_range.start_time", &range.start_time),
        ends_at: parsed_timestamp(v, "applied_time_range.end_time", &range.end_time),
        commitment_id: None,
        relation_id: non_empty(a.relation_id.clone()),
    }
}

pub fn applied(view: AppliedView) -> pb::AppliedPromotion {
    let a = view.applied;
    let money =
        |amount| pb::Money { amount: decimal(amount), credit_type: view.promotion.credit_type.clone() };
    pb::AppliedPromotion {
        id: a.id.to_string(),
        customer: customer_id(a.customer.to_string()),
        promotion_id: a.promotion.to_string(),
        product_id: a.product.map(|p| p.to_string()).unwrap_or_default(),
        priority: decimal(a.priority),
        applied_time_range: Some(pb::TimeRange {
            start_time: Some(timestamp(a.starts_at)),
            end_time: opt_timestamp(a.ends_at),
        }),
        commitment_id: a.commitment_id.map(|c| c.to_string()).unwrap_or_default(),
        relation_id: a.relation_id.unwrap_or_default(),
        added_time: Some(timestamp(a.added_at)),
        removed_time: opt_timestamp(a.removed_at),
        removal_context: a.removal_context.unwrap_or_default(),
        amount_left_in_cycle: Some(money(view.left.in_cycle)),
        total_amount_left: Some(money(view.left.total)),
        created_by: key_id(a.by.created_by),
        updated_by: key_id(a.by.updated_by),
    }
}
