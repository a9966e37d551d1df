//! Billing promos: the seed's defaults and rules, and basket evaluation (validity window
//! boundaries, groups, caps, several promos on one basket, deterministic order).

use chrono::TimeZone;

use super::*;

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 0, 0, 0).unwrap()
}

fn pid(n: u128) -> ProductId {
    ProductId(uuid::Uuid::from_u128(n))
}

fn promo(id: u128, t: PromoType, product: u128, n: u32, reward: u128, m: u32) -> BillingPromo {
    BillingPromo {
        id: PromoId(uuid::Uuid::from_u128(id)),
        promo_type: t,
        validity_start: at(1),
        validity_end: Some(at(20)),
        product_type: ProductKind::InventoryVariant,
        product: pid(product),
        product_n: n,
        reward_product_type: ProductKind::InventoryVariant,
        reward_product: pid(reward),
        reward_product_m: m,
        created_at: at(1),
        created_by: ApiKeyId(uuid::Uuid::nil()),
        updated_by: None,
        updated_at: at(1),
        version: 1,
    }
}

fn basket(lines: &[(u128, i64)]) -> Vec<BasketLine> {
    lines.iter().map(|(p, q)| BasketLine { product: pid(*p), quantity: *q }).collect()
}

fn free(o: &BasketOutcome, product: u128) -> i64 {
    o.lines.iter().find(|l| l.product == pid(product)).map_or(0, |l| l.free_units)
}

#[test]
fn a_given_reward_type_is_checked_against_the_defaulted_reward_product() {
    let p = pid(1);
    let kinds = ProductKinds::from([(p, ProductKind::Service)]);
    let d = PromoDraft {
        promo_type: Parsed::Valid(PromoType::Rewards),
        product_type: Parsed::Valid(ProductKind::Service),
        product: Parsed::Valid(p),
        reward_product_type: Parsed::Valid(ProductKind::InventoryVariant),
        ..Default::default()
    };
    let mut v = Violations::default();
    assert!(validate_new(d, &kinds, at(5), ApiKeyId::generate(), &mut v).is_none());
    assert_eq!(v.items()[0].field, "reward_product_type");
}

#[test]
fn changing_the_reward_type_alone_is_checked_against_the_current_reward_product() {
    let current = promo(1, PromoType::BuyNTakeM, 2, 1, 3, 1);
    let kinds = ProductKinds::from([(pid(3), ProductKind::InventoryVariant)]);
    let same =
        PromoChanges { reward_product_type: Some(ProductKind::InventoryVariant), ..Default::default() };
    let mut v = Violations::default();
    apply_changes(&current, same, &kinds, (at(2), None), &mut v);
    assert!(v.is_empty(), "{v:?}");
    let other = PromoChanges { reward_product_type: Some(ProductKind::Service), ..Default::default() };
    apply_changes(&current, other, &kinds, (at(2), None), &mut v);
    assert_eq!(v.items()[0].field, "reward_product_type");
}

#[test]
fn defaults_follow_the_seed() {
    let p = pid(1);
    let kinds = ProductKinds::from([(p, ProductKind::Service)]);
    let d = PromoDraft {
        promo_type: Parsed::Valid(PromoType::Rewards),
        product_type: Parsed::Valid(ProductKind::Service),
        product: Parsed::Valid(p),
        ..Default::default()
    };
    let mut v = Violations::default();
    let key = ApiKeyId::generate();
    let promo = validate_new(d, &kinds, at(5), key, &mut v).expect("valid");
    assert_eq!((promo.validity_start, promo.validity_end, promo.created_at), (at(5), None, at(5)));
    assert_eq!((promo.product_n, promo.reward_product_m), (1, 1));
    assert_eq!((promo.reward_product, promo.reward_product_type), (p, ProductKind::Service));
    assert_eq!(promo.created_by, key);

    let d = PromoDraft {
        promo_type: Parsed::Valid(PromoType::BuyNTakeM),
        product_type: Parsed::Valid(ProductKind::Service),
        product: Parsed::Valid(p),
        product_n: Some(3),
        ..Default::default()
    };
    assert_eq!(validate_new(d, &kinds, at(5), key, &mut v).unwrap().reward_product_m, 3, "M defaults to N");
}

#[test]
fn zero_n_or_m_unknown_products_wrong_kinds_and_reversed_windows_are_invalid() {
    let p = pid(1);
    let kinds = ProductKinds::from([(p, ProductKind::Service)]);
    let d = PromoDraft {
        promo_type: Parsed::Valid(PromoType::BuyNTakeM),
        product_type: Parsed::Valid(ProductKind::InventoryVariant),
        product: Parsed::Valid(p),
        product_n: Some(0),
        reward_product: Parsed::Valid(pid(9)),
        reward_product_m: Some(0),
        validity_start: Parsed::Valid(at(10)),
        validity_end: Parsed::Valid(at(10)),
        ..Default::default()
    };
    let mut v = Violations::default();
    assert!(validate_new(d, &kinds, at(5), ApiKeyId::generate(), &mut v).is_none());
    let fields: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, ["product", "product_n", "reward_product", "reward_product_m", "validity_end_time"]);
}

#[test]
fn validity_start_is_inclusive_and_end_exclusive() {
    let p = promo(1, PromoType::BuyNTakeM, 1, 1, 1, 1);
    let lines = basket(&[(1, 2)]);
    assert_eq!(evaluate_basket(std::slice::from_ref(&p), &lines, at(1)).applied.len(), 1, "at the start");
    let before = evaluate_basket(std::slice::from_ref(&p), &lines, at(1) - chrono::Duration::seconds(1));
    assert_eq!(before.skipped[0].reason, SkipReason::NotYetValid);
    let at_end = evaluate_basket(&[p], &lines, at(20));
    assert_eq!(at_end.skipped[0].reason, SkipReason::Expired);
}

#[test]
fn same_product_counts_groups_of_n_plus_m() {
    // Buy 2 take 1: every third unit is free.
    let p = promo(1, PromoType::BuyNTakeM, 1, 2, 1, 1);
    for (bought, expected) in [(2, 0), (3, 1), (5, 1), (6, 2), (7, 2), (9, 3)] {
        let o = evaluate_basket(std::slice::from_ref(&p), &basket(&[(1, bought)]), at(5));
        assert_eq!(free(&o, 1), expected, "{bought} bought");
    }
    // Buy 2 take 2: a partial group gives what it holds beyond N.
    let p = promo(1, PromoType::BuyNTakeM, 1, 2, 1, 2);
    let o = evaluate_basket(&[p], &basket(&[(1, 7)]), at(5));
    assert_eq!((free(&o, 1), o.applied[0].groups), (3, 2), "4 + 3: two free, then one");
}

#[test]
fn too_few_units_is_reported() {
    let p = promo(1, PromoType::BuyNTakeM, 1, 2, 1, 1);
    let o = evaluate_basket(&[p], &basket(&[(1, 2)]), at(5));
    assert_eq!(o.skipped[0].reason, SkipReason::QuantityTooLow);
    assert_eq!(o.skipped[0].message, "needs 3 units bought, has 2");
}

#[test]
fn other_reward_product_is_capped_at_what_is_in_the_basket() {
    // Buy 1 phone, take 2 cases.
    let p = promo(1, PromoType::BuyNTakeM, 1, 1, 2, 2);
    let o = evaluate_basket(std::slice::from_ref(&p), &basket(&[(1, 3), (2, 4)]), at(5));
    assert_eq!((free(&o, 2), free(&o, 1)), (4, 0), "6 earned, 4 in the basket");
    let o = evaluate_basket(&[p], &basket(&[(1, 3)]), at(5));
    assert_eq!(o.skipped[0].reason, SkipReason::NothingToMakeFree);
}

#[test]
fn rewards_grant_floor_of_bought_over_n_times_m_uncapped() {
    let p = promo(1, PromoType::Rewards, 1, 3, 7, 2);
    let o = evaluate_basket(&[p], &basket(&[(1, 10)]), at(5));
    assert_eq!((o.applied[0].groups, o.applied[0].units), (3, 6));
    assert_eq!(free(&o, 1), 0, "rewards make nothing in the basket free");
    let rewards = rewards_of(&o, CustomerId::generate(), "b-1", at(5));
    assert_eq!((rewards.len(), rewards[0].units, rewards[0].product), (1, 6, pid(7)));
}

#[test]
fn promos_apply_in_start_then_id_order_and_do_not_stack() {
    let mut later = promo(1, PromoType::BuyNTakeM, 1, 1, 1, 1);
    later.validity_start = at(2);
    let earlier_big_id = promo(9, PromoType::BuyNTakeM, 1, 1, 1, 1);
    // Buy a phone, take a case: only one case in the basket, so one phone qualifies.
    let earlier_small_id = promo(3, PromoType::BuyNTakeM, 1, 1, 2, 1);
    let promos = [later, earlier_big_id, earlier_small_id];
    let lines = basket(&[(1, 4), (2, 1)]);
    let o = evaluate_basket(&promos, &lines, at(5));
    let order: Vec<_> = o.applied.iter().map(|a| (a.promo_id.0.as_u128(), a.groups, a.units)).collect();
    assert_eq!(order, [(3, 1, 1), (9, 1, 1)], "start first, then id");
    assert_eq!((free(&o, 1), free(&o, 2)), (1, 1), "of 4 phones: 1 qualified the case, 2 made 1 free");
    assert_eq!(
        o.skipped[0].reason,
        SkipReason::QuantityTooLow,
        "one phone is left: it cannot qualify and be free"
    );
    let again = evaluate_basket(&[promos[2].clone(), promos[0].clone(), promos[1].clone()], &lines, at(5));
    assert_eq!(again, o, "the input order does not matter");
}

#[test]
fn a_rewards_promo_uses_up_its_qualifying_units() {
    let rewards = promo(1, PromoType::Rewards, 1, 2, 7, 1);
    let mut free_one = promo(2, PromoType::BuyNTakeM, 1, 1, 1, 1);
    free_one.validity_start = at(2);
    let o = evaluate_basket(&[rewards, free_one], &basket(&[(1, 5)]), at(5));
    assert_eq!((o.applied[0].units, o.applied.len()), (2, 1), "4 of 5 units earned 2 rewards");
    assert_eq!(o.skipped[0].reason, SkipReason::QuantityTooLow, "the fifth unit alone cannot make one free");
}

#[test]
fn promos_on_products_outside_the_basket_are_not_candidates() {
    let o = evaluate_basket(&[promo(1, PromoType::Rewards, 2, 1, 2, 1)], &basket(&[(1, 5)]), at(5));
    assert!(o.applied.is_empty() && o.skipped.is_empty());
}

#[test]
fn basket_lines_are_checked() {
    let mut v = Violations::default();
    let lines = [
        Parsed::Valid(BasketLine { product: pid(1), quantity: 0 }),
        Parsed::Valid(BasketLine { product: pid(1), quantity: 1 }),
    ];
    check_lines(&mut v, &lines);
    let fields: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, ["lines[0].quantity", "lines[1].product_id"]);
    let mut v = Violations::default();
    check_lines(&mut v, &[]);
    assert_eq!(v.items()[0].field, "lines");
}

#[test]
fn promo_types_have_their_seed_names() {
    for (t, name) in [(PromoType::Rewards, "REWARDS"), (PromoType::BuyNTakeM, "BUY_N_TAKE_M")] {
        assert_eq!((t.as_str(), PromoType::parse(name)), (name, Some(t)));
    }
    assert_eq!(PromoType::parse("rewards"), None);
}

#[test]
fn a_promo_is_valid_from_its_start_until_just_before_its_end() {
    let mut p = promo(1, PromoType::BuyNTakeM, 1, 1, 1, 1);
    let (start, end) = (p.validity_start, p.validity_end.expect("the fixture ends"));
    assert!(!p.valid_at(start - chrono::Duration::nanoseconds(1)));
    assert!(p.valid_at(start));
    assert!(p.valid_at(end - chrono::Duration::nanoseconds(1)));
    assert!(!p.valid_at(end));
    p.validity_end = None;
    assert!(p.valid_at(end + chrono::Duration::days(10_000)), "no end: valid ever after");
}

#[test]
fn a_thousand_basket_lines_are_allowed_and_one_more_is_not() {
    let lines: Vec<_> = (0..=MAX_BASKET_LINES as u128)
        .map(|i| Parsed::Valid(BasketLine { product: pid(i + 1), quantity: 1 }))
        .collect();
    let mut v = Violations::default();
    check_lines(&mut v, &lines[..MAX_BASKET_LINES]);
    assert!(v.is_empty());
    check_lines(&mut v, &lines);
    assert_eq!(v.items().iter().map(|i| i.field.as_str()).collect::<Vec<_>>(), ["lines"]);
}

#[test]
fn buy_three_take_one_counts_groups_of_four() {
    // 9 units: two full groups (8 units, 2 free) and one unit short of another group.
    assert_eq!(same_product(9, 3, 1), (2, 2, 8));
    // Buy 3 take 2 over 9 units: one full group of 5, then a partial group of 4 that
    // holds one unit beyond its 3 qualifiers: that unit is free, all 9 are used.
    assert_eq!(same_product(9, 3, 2), (2, 3, 9));
}

#[test]
fn a_change_advances_the_version_once_and_stamps_the_time() {
    let current = promo(1, PromoType::BuyNTakeM, 2, 1, 3, 1);
    let mut v = Violations::default();
    let next = apply_changes(&current, PromoChanges::default(), &ProductKinds::new(), (at(2), None), &mut v);
    assert_eq!((next.version, next.updated_at), (current.version + 1, at(2)));
}

/// N and M apart (3 and 2), so no sum can pass for a product or a quotient.
#[test]
fn buy_three_take_two_counts_groups_and_units_for_every_promo_type() {
    let groups_units = |o: &BasketOutcome| o.applied.iter().map(|a| (a.groups, a.units)).collect::<Vec<_>>();
    // Rewards: 7 bought give floor(7 / 3) = 2 groups of 2 reward units.
    let o = evaluate_basket(&[promo(1, PromoType::Rewards, 1, 3, 2, 2)], &basket(&[(1, 7)]), at(2));
    assert_eq!(groups_units(&o), [(2, 4)]);
    // Another product: 2 groups could make 4 free, the basket holds 5 of it.
    let o = evaluate_basket(&[promo(1, PromoType::BuyNTakeM, 1, 3, 2, 2)], &basket(&[(1, 7), (2, 5)]), at(2));
    assert_eq!((groups_units(&o), free(&o, 2)), (vec![(2, 4)], 4));
    // ... and only 3 of it: 3 free, from 2 groups (the second one partly).
    let o = evaluate_basket(&[promo(1, PromoType::BuyNTakeM, 1, 3, 2, 2)], &basket(&[(1, 7), (2, 3)]), at(2));
    assert_eq!((groups_units(&o), free(&o, 2)), (vec![(2, 3)], 3));
    // The same product, 9 units: a group of 5 (2 free) and a partial one (1 free).
    let o = evaluate_basket(&[promo(1, PromoType::BuyNTakeM, 1, 3, 1, 2)], &basket(&[(1, 9)]), at(2));
    assert_eq!((groups_units(&o), free(&o, 1)), (vec![(2, 3)], 3));
    // A second promo on the same product sees only what the first left unused: none.
    let two = [promo(1, PromoType::BuyNTakeM, 1, 3, 1, 2), promo(2, PromoType::BuyNTakeM, 1, 3, 1, 2)];
    let o = evaluate_basket(&two, &basket(&[(1, 9)]), at(2));
    assert_eq!((o.applied.len(), o.skipped.len()), (1, 1));
    // Exactly N units of the same product make nothing free: N + 1 are needed.
    let o = evaluate_basket(&[promo(1, PromoType::BuyNTakeM, 1, 3, 1, 2)], &basket(&[(1, 3)]), at(2));
    assert_eq!(o.skipped[0].reason, SkipReason::QuantityTooLow);
    assert!(o.skipped[0].message.contains("needs 4 units"), "{}", o.skipped[0].message);
}

#[test]
fn a_reward_has_its_units_less_what_was_redeemed_available() {
    let r = Reward {
        id: RewardId(uuid::Uuid::from_u128(1)),
        customer: CustomerId(uuid::Uuid::from_u128(2)),
        promo: PromoId(uuid::Uuid::from_u128(3)),
        product: pid(4),
        units: 5,
        redeemed_units: 2,
        basket_id: "b-1".into(),
        granted_at: at(2),
    };
    assert_eq!(r.available(), 3);
}

/// Buy 2 take 3: products and sums of N and M differ, and what a promo uses up shows in
/// what the next promo on the same product can count.
#[test]
fn buy_two_take_three_uses_up_exactly_its_qualifiers_and_free_units() {
    let units = |o: &BasketOutcome| o.applied.iter().map(|a| (a.groups, a.units)).collect::<Vec<_>>();
    // Rewards: 7 bought give 3 groups of 3 units.
    let o = evaluate_basket(&[promo(1, PromoType::Rewards, 1, 2, 2, 3)], &basket(&[(1, 7)]), at(2));
    assert_eq!(units(&o), [(3, 9)]);
    // Another product: 3 groups make 9 of its 10 free and use 6 qualifiers, so a later
    // rewards promo (buy 1 get 1) counts the 1 unit left.
    let promos = [promo(1, PromoType::BuyNTakeM, 1, 2, 2, 3), promo(2, PromoType::Rewards, 1, 1, 3, 1)];
    let o = evaluate_basket(&promos, &basket(&[(1, 7), (2, 10)]), at(2));
    assert_eq!((units(&o), free(&o, 2)), (vec![(3, 9), (1, 1)], 9));
    // Only 4 of the other product: 4 free from 2 groups.
    let o = evaluate_basket(&promos[..1], &basket(&[(1, 7), (2, 4)]), at(2));
    assert_eq!(units(&o), [(2, 4)]);
    // The same product, 9 units: a group of 5 and a partial one of 4 (2 free); all 9
    // are used, so a second such promo finds none left.
    let same = [promo(1, PromoType::BuyNTakeM, 1, 2, 1, 3), promo(2, PromoType::BuyNTakeM, 1, 2, 1, 3)];
    let o = evaluate_basket(&same, &basket(&[(1, 9)]), at(2));
    assert_eq!((units(&o), free(&o, 1), o.skipped.len()), (vec![(2, 5)], 5, 1));
    // N + 1 units of the same product are enough for one free unit.
    let o = evaluate_basket(&same[..1], &basket(&[(1, 3)]), at(2));
    assert_eq!(units(&o), [(1, 1)]);
}

#[test]
fn a_rewards_promo_uses_up_n_units_per_group_it_grants() {
    // Buy 3 get 1 reward over 7 units: 2 groups use 6 units, so a later buy-1-take-1 of
    // another product counts the 1 unit left and makes 1 free (not 2: 2 x 3 is not 2 + 3).
    let rewards = promo(1, PromoType::Rewards, 1, 3, 7, 1);
    let mut other = promo(2, PromoType::BuyNTakeM, 1, 1, 2, 1);
    other.validity_start = at(2);
    let o = evaluate_basket(&[rewards, other], &basket(&[(1, 7), (2, 5)]), at(5));
    let applied: Vec<_> = o.applied.iter().map(|a| (a.groups, a.units)).collect();
    assert_eq!((applied, free(&o, 2)), (vec![(2, 2), (1, 1)], 1));
}
