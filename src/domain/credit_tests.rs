//! Credit promotions: cycle boundaries, what is left in the cycle and in total, and the
//! drawable sources of an application.

use chrono::TimeZone;

use super::*;

fn at(m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, d, 0, 0, 0).unwrap()
}

fn promotion(per_cycle: Option<i64>, total: Option<i64>) -> CreditPromotion {
    CreditPromotion {
        id: CreditPromotionId::generate(),
        name: "Welcome credit".into(),
        credit_type: "USD".into(),
        amount_per_cycle: per_cycle.map(Decimal::from),
        total_amount: total.map(Decimal::from),
        cycle: Cycle::Monthly,
        applicability: Applicability::default(),
        created_at: at(1, 1),
        by: Default::default(),
    }
}

fn applied(starts: DateTime<Utc>, ends: Option<DateTime<Utc>>) -> AppliedPromotion {
    AppliedPromotion {
        id: AppliedPromotionId::generate(),
        customer: CustomerId::generate(),
        promotion: CreditPromotionId::generate(),
        product: None,
        priority: Decimal::ONE,
        starts_at: starts,
        ends_at: ends,
        commitment_id: None,
        relation_id: None,
        added_at: starts,
        removed_at: None,
        removal_context: None,
        total_used: Decimal::ZERO,
        by: Default::default(),
    }
}

#[test]
fn cycles_are_anchored_on_the_start_and_clipped_to_the_end() {
    let p = promotion(Some(10), None);
    let a = applied(at(1, 31), Some(at(4, 15)));
    assert_eq!(a.cycle_at(&p, at(1, 31)), Some((at(1, 31), at(2, 28))), "start inclusive");
    assert_eq!(a.cycle_at(&p, at(2, 28)), Some((at(2, 28), at(3, 31))), "next cycle on the anchored day");
    assert_eq!(a.cycle_at(&p, at(4, 1)), Some((at(3, 31), at(4, 15))), "clipped at the end");
    assert_eq!(a.cycle_at(&p, at(4, 15)), None, "end exclusive");
    assert_eq!(a.cycle_at(&p, at(1, 30)), None);
    assert_eq!(a.cycles_between(&p, at(2, 1), at(3, 31)).len(), 3);
}

#[test]
fn a_total_only_promotion_has_one_cycle() {
    let p = promotion(None, Some(100));
    let a = applied(at(1, 1), None);
    let (start, end) = a.cycle_at(&p, at(9, 1)).unwrap();
    assert_eq!(start, at(1, 1));
    assert!(end > at(12, 31));
}

#[test]
fn amounts_left_take_the_tighter_of_cycle_and_total() {
    let p = promotion(Some(50), Some(120));
    let mut a = applied(at(1, 1), None);
    a.total_used = Decimal::from(90);
    let left = amounts_left(&a, &p, Decimal::from(10), at(3, 5));
    assert_eq!((left.in_cycle, left.total), (Decimal::from(30), Decimal::from(30)));
    let left = amounts_left(&a, &promotion(Some(50), None), Decimal::from(10), at(3, 5));
    assert_eq!((left.in_cycle, left.total), (Decimal::from(40), Decimal::from(40)));
}

#[test]
fn removed_or_out_of_range_applications_have_nothing_left_in_cycle() {
    let p = promotion(Some(50), Some(120));
    let mut a = applied(at(1, 1), Some(at(2, 1)));
    assert_eq!(amounts_left(&a, &p, Decimal::ZERO, at(3, 1)).in_cycle, Decimal::ZERO);
    a.ends_at = None;
    a.removed_at = Some(at(1, 15));
    assert_eq!(amounts_left(&a, &p, Decimal::ZERO, at(1, 20)).in_cycle, Decimal::ZERO);
    let mut pools = Vec::new();
    assert!(
        sources_of(&a, &p, &HashMap::new(), at(1, 1), at(1, 20), &mut pools).is_empty(),
        "removed draws nothing"
    );
}

#[test]
fn sources_of_cycles_share_the_total_pool() {
    let p = promotion(Some(50), Some(70));
    let mut a = applied(at(1, 1), None);
    a.total_used = Decimal::from(20);
    let used = HashMap::from([(at(1, 1), Decimal::from(20))]);
    let mut pools = Vec::new();
    let sources = sources_of(&a, &p, &used, at(1, 20), at(2, 10), &mut pools);
    assert_eq!(pools, [Decimal::from(50)]);
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0].available, Decimal::from(30), "January has 30 of its 50 left");
    assert_eq!(sources[1].available, Decimal::from(50));
    assert!(sources.iter().all(|s| s.pool == Some(0)));
}

#[test]
fn application_rules_name_their_fields() {
    let d = ApplicationDraft {
        customer: Parsed::Valid(CustomerId::generate()),
        promotion: Parsed::Valid(CreditPromotionId::generate()),
        product: Parsed::Valid(ProductId::generate()),
        priority: Parsed::Absent,
        starts_at: Parsed::Valid(at(2, 1)),
        ends_at: Parsed::Valid(at(1, 1)),
        ..Default::default()
    };
    let mut v = Violations::default();
    assert!(validate_application(d, &ApplicationRefs::default(), (at(1, 1), None), &mut v).is_none());
    let fields: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
    assert_eq!(
        fields,
        ["customer_id", "promotion_id", "product_id", "priority", "applied_time_range.end_time"]
    );
}

#[test]
fn a_promotion_needs_an_amount_per_cycle_or_a_total() {
    let d = CreditPromotionDraft {
        name: "x".into(),
        credit_type: "USD".into(),
        amount_per_cycle: Parsed::Absent,
        total_amount: Parsed::Absent,
        cycle: Cycle::Monthly,
        product_ids: vec![],
        product_tags: vec![],
    };
    let mut v = Violations::default();
    assert!(validate_promotion(d, &[], (at(1, 1), None), &mut v).is_none());
    assert_eq!(v.items()[0].field, "amount_per_cycle");
}

#[test]
fn a_promotion_covers_the_products_and_tags_it_names() {
    let (vod, fuel) = (ProductId(uuid::Uuid::from_u128(1)), ProductId(uuid::Uuid::from_u128(2)));
    let d = CreditPromotionDraft {
        name: "VOD credit".into(),
        credit_type: "USD".into(),
        amount_per_cycle: Parsed::Valid(Decimal::TEN),
        total_amount: Parsed::Absent,
        cycle: Cycle::Monthly,
        product_ids: vec![Parsed::Valid(vod)],
        product_tags: vec!["vod".into()],
    };
    let mut v = Violations::default();
    let p = validate_promotion(d, &[vod], (at(1, 1), None), &mut v).expect("valid");
    assert_eq!(
        (p.applicability.product_ids, p.applicability.product_tags),
        (vec![vod], vec!["vod".to_string()])
    );

    // An application naming one product narrows the promotion to it.
    let mut a = applied(at(1, 1), None);
    let whole = promotion(Some(10), None);
    assert_eq!(a.applicability(&whole), whole.applicability);
    a.product = Some(fuel);
    assert_eq!(a.applicability(&whole).product_ids, vec![fuel]);
}

#[test]
fn cycles_have_their_stored_names_and_lengths() {
    for (c, name, months) in
        [(Cycle::Monthly, "MONTHLY", 1), (Cycle::Quarterly, "QUARTERLY", 3), (Cycle::Annual, "ANNUAL", 12)]
    {
        assert_eq!((c.as_str(), Cycle::parse(name), c.months()), (name, Some(c), months));
    }
    assert_eq!(Cycle::parse("monthly"), None);
}

#[test]
fn a_valid_application_is_made_and_a_missing_reference_is_reported_once() {
    let refs = ApplicationRefs { customer_exists: true, promotion_exists: true, product_exists: true };
    let d = ApplicationDraft {
        customer: Parsed::Valid(CustomerId::generate()),
        promotion: Parsed::Valid(CreditPromotionId::generate()),
        product: Parsed::Valid(ProductId::generate()),
        priority: Parsed::Valid(Decimal::ONE),
        starts_at: Parsed::Valid(at(1, 1)),
        ends_at: Parsed::Valid(at(2, 1)),
        ..Default::default()
    };
    let mut v = Violations::default();
    let made = validate_application(d.clone(), &refs, (at(1, 1), None), &mut v);
    assert!(v.is_empty(), "{:?}", v.items());
    assert_eq!(made.map(|a| (a.starts_at, a.ends_at)), Some((at(1, 1), Some(at(2, 1)))));

    // Absent references are "required", never also "no such ..."; an absent product is
    // allowed and not looked for.
    let absent = ApplicationDraft {
        customer: Parsed::Absent,
        promotion: Parsed::Absent,
        product: Parsed::Absent,
        ..d
    };
    let mut v = Violations::default();
    assert!(validate_application(absent, &ApplicationRefs::default(), (at(1, 1), None), &mut v).is_none());
    let fields: Vec<_> = v.items().iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, ["customer_id", "promotion_id"]);
}

#[test]
fn a_quarterly_cycle_spans_three_months_from_the_anchor() {
    let p = CreditPromotion { cycle: Cycle::Quarterly, ..promotion(Some(10), None) };
    let a = applied(at(1, 31), Some(at(12, 1)));
    assert_eq!(a.cycle_at(&p, at(2, 15)), Some((at(1, 31), at(4, 30))));
    assert_eq!(a.cycle_at(&p, at(5, 1)), Some((at(4, 30), at(7, 31))));
}
