//! One test per rule of seed 004: each starts from a valid commit and breaks one rule.

use chrono::TimeZone;

use super::*;

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

fn dec(s: &str) -> Parsed<Decimal> {
    Parsed::Valid(s.parse().unwrap())
}

struct Fixture {
    refs: CommitRefs,
    product: ProductId,
    other_product: ProductId,
}

fn fixture() -> Fixture {
    let product = ProductId::generate();
    let other_product = ProductId::generate();
    Fixture {
        refs: CommitRefs { customer_exists: true, products: HashSet::from([product, other_product]) },
        product,
        other_product,
    }
}

fn access(amount: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> AccessItemDraft {
    AccessItemDraft {
        amount: dec(amount),
        starting_at: Parsed::Valid(from),
        ending_before: Parsed::Valid(to),
    }
}

fn amount_charge(a: &str) -> ChargeDraft {
    ChargeDraft { amount: dec(a), ..Default::default() }
}

fn prepaid(f: &Fixture) -> CommitDraft {
    CommitDraft {
        commit_type: Parsed::Valid(CommitType::Prepaid),
        customer_id: Parsed::Valid(CustomerId::generate()),
        product_id: Parsed::Valid(f.product),
        priority: dec("1"),
        access_credit_type: "USD".into(),
        access_schedule_given: true,
        access_items: vec![access("1000", at(2026, 1, 1), at(2027, 1, 1))],
        ..Default::default()
    }
}

fn postpaid(f: &Fixture) -> CommitDraft {
    CommitDraft {
        commit_type: Parsed::Valid(CommitType::Postpaid),
        invoice_schedule: Some(InvoiceScheduleDraft {
            credit_type: "USD".into(),
            items: vec![InvoiceItemDraft {
                timestamp: Parsed::Valid(at(2027, 1, 1)),
                charge: amount_charge("1000"),
            }],
            ..Default::default()
        }),
        invoice_contract_id: Parsed::Valid(Uuid::now_v7()),
        ..prepaid(f)
    }
}

/// The fields named by the violations of validating `d`.
fn violations(d: CommitDraft, refs: &CommitRefs) -> Vec<String> {
    let mut v = Violations::default();
    let out = validate_new(d, refs, &mut v);
    if !v.is_empty() {
        assert!(out.is_none(), "no commit comes back with violations");
    }
    v.items().iter().map(|i| format!("{}: {}", i.field, i.description)).collect()
}

fn fields(d: CommitDraft, refs: &CommitRefs) -> Vec<String> {
    violations(d, refs).into_iter().map(|s| s.split(':').next().unwrap().to_owned()).collect()
}

#[test]
fn valid_prepaid_and_postpaid_commits_pass() {
    let f = fixture();
    assert_eq!(violations(prepaid(&f), &f.refs), Vec::<String>::new());
    assert_eq!(violations(postpaid(&f), &f.refs), Vec::<String>::new());
}

#[test]
fn type_customer_product_and_priority_are_required() {
    let f = fixture();
    let d = CommitDraft {
        commit_type: Parsed::Absent,
        customer_id: Parsed::Absent,
        product_id: Parsed::Absent,
        priority: Parsed::Absent,
        ..prepaid(&f)
    };
    assert_eq!(fields(d, &f.refs), ["type", "customer_id", "product_id", "priority"]);
}

#[test]
fn malformed_values_are_not_reported_twice_as_missing() {
    let f = fixture();
    let d = CommitDraft { customer_id: Parsed::Invalid, priority: Parsed::Invalid, ..prepaid(&f) };
    let mut v = Violations::default();
    assert!(validate_new(d, &f.refs, &mut v).is_none(), "no commit from malformed values");
    assert!(v.is_empty(), "the parser already reported them: {v}");
}

#[test]
fn customer_and_product_must_exist_in_the_org() {
    let f = fixture();
    let refs = CommitRefs { customer_exists: false, products: HashSet::new() };
    assert_eq!(fields(prepaid(&f), &refs), ["customer_id", "product_id"]);
}

#[test]
fn access_schedule_is_required_with_at_least_one_item() {
    let f = fixture();
    let d = CommitDraft { access_schedule_given: false, access_items: vec![], ..prepaid(&f) };
    assert_eq!(fields(d, &f.refs), ["access_schedule"]);
    let d = CommitDraft { access_items: vec![], ..prepaid(&f) };
    assert_eq!(fields(d, &f.refs), ["access_schedule.schedule_items"]);
}

#[test]
fn access_item_needs_a_positive_amount() {
    let f = fixture();
    let d = CommitDraft { access_items: vec![access("0", at(2026, 1, 1), at(2026, 2, 1))], ..prepaid(&f) };
    assert_eq!(fields(d, &f.refs), ["access_schedule.schedule_items[0].amount"]);
}

#[test]
fn access_item_starts_before_it_ends() {
    let f = fixture();
    let d = CommitDraft {
        access_items: vec![
            access("1", at(2026, 1, 1), at(2026, 2, 1)),
            access("1", at(2026, 3, 1), at(2026, 3, 1)),
            AccessItemDraft { amount: dec("1"), ..Default::default() },
        ],
        ..prepaid(&f)
    };
    assert_eq!(
        fields(d, &f.refs),
        [
            "access_schedule.schedule_items[1].ending_before",
            "access_schedule.schedule_items[2].starting_at",
            "access_schedule.schedule_items[2].ending_before"
        ]
    );
}

#[test]
fn postpaid_commit_needs_exactly_one_access_item() {
    let f = fixture();
    let mut d = postpaid(&f);
    d.access_items.push(access("1", at(2027, 1, 1), at(2027, 2, 1)));
    assert!(fields(d, &f.refs).contains(&"access_schedule.schedule_items".to_owned()));
}

#[test]
fn postpaid_commit_needs_an_invoice_schedule() {
    let f = fixture();
    let d = CommitDraft { invoice_schedule: None, ..postpaid(&f) };
    assert_eq!(fields(d, &f.refs), ["invoice_schedule"]);
}

#[test]
fn postpaid_invoice_schedule_has_exactly_one_item() {
    let f = fixture();
    let mut d = postpaid(&f);
    let s = d.invoice_schedule.as_mut().unwrap();
    s.items.push(InvoiceItemDraft { timestamp: Parsed::Valid(at(2027, 2, 1)), charge: amount_charge("1") });
    assert!(fields(d, &f.refs).contains(&"invoice_schedule.schedule_items".to_owned()));
}

#[test]
fn postpaid_invoice_total_must_match_the_access_amount() {
    let f = fixture();
    let mut d = postpaid(&f);
    d.invoice_schedule.as_mut().unwrap().items[0].charge = amount_charge("999.99");
    assert_eq!(fields(d, &f.refs), ["invoice_schedule.schedule_items[0]"]);
    // unit_price x quantity counts as its product.
    let mut d = postpaid(&f);
    d.invoice_schedule.as_mut().unwrap().items[0].charge =
        ChargeDraft { unit_price: dec("250"), quantity: dec("4"), ..Default::default() };
    assert!(fields(d, &f.refs).is_empty());
}

#[test]
fn postpaid_commit_needs_an_invoice_contract() {
    let f = fixture();
    let d = CommitDraft { invoice_contract_id: Parsed::Absent, ..postpaid(&f) };
    assert_eq!(fields(d, &f.refs), ["invoice_contract_id"]);
}

#[test]
fn prepaid_with_invoice_schedule_needs_a_contract_unless_not_invoiced() {
    let f = fixture();
    let schedule = InvoiceScheduleDraft {
        credit_type: "USD".into(),
        items: vec![InvoiceItemDraft {
            timestamp: Parsed::Valid(at(2026, 1, 1)),
            charge: amount_charge("1000"),
        }],
        ..Default::default()
    };
    let d = CommitDraft { invoice_schedule: Some(schedule.clone()), ..prepaid(&f) };
    assert_eq!(fields(d, &f.refs), ["invoice_contract_id"]);
    let free = CommitDraft {
        invoice_schedule: Some(InvoiceScheduleDraft { do_not_invoice: true, ..schedule }),
        ..prepaid(&f)
    };
    assert!(fields(free, &f.refs).is_empty(), "do_not_invoice waives the contract");
    assert!(fields(prepaid(&f), &f.refs).is_empty(), "a complimentary commit needs no contract");
}

#[test]
fn invoice_item_has_amount_or_unit_price_and_quantity_not_both() {
    let f = fixture();
    let with = |charge: ChargeDraft| {
        let mut d = CommitDraft { invoice_contract_id: Parsed::Valid(Uuid::now_v7()), ..prepaid(&f) };
        d.invoice_schedule = Some(InvoiceScheduleDraft {
            credit_type: "USD".into(),
            items: vec![InvoiceItemDraft { timestamp: Parsed::Valid(at(2026, 1, 1)), charge }],
            ..Default::default()
        });
        fields(d, &f.refs)
    };
    let p = "invoice_schedule.schedule_items[0]";
    assert_eq!(with(ChargeDraft::default()), [format!("{p}.amount")]);
    assert_eq!(
        with(ChargeDraft { amount: dec("1"), unit_price: dec("1"), quantity: dec("1") }),
        [format!("{p}.unit_price"), format!("{p}.quantity")]
    );
    assert_eq!(with(ChargeDraft { unit_price: dec("1"), ..Default::default() }), [format!("{p}.quantity")]);
    assert_eq!(with(ChargeDraft { quantity: dec("1"), ..Default::default() }), [format!("{p}.unit_price")]);
    assert!(with(ChargeDraft { unit_price: dec("2"), quantity: dec("3"), ..Default::default() }).is_empty());
}

#[test]
fn invoice_schedule_needs_items_or_a_recurring_schedule() {
    let f = fixture();
    let d = CommitDraft {
        invoice_schedule: Some(InvoiceScheduleDraft {
            credit_type: "USD".into(),
            do_not_invoice: true,
            ..Default::default()
        }),
        ..prepaid(&f)
    };
    assert_eq!(fields(d, &f.refs), ["invoice_schedule"]);
}

#[test]
fn recurring_schedule_needs_its_required_fields() {
    let f = fixture();
    let d = CommitDraft {
        invoice_schedule: Some(InvoiceScheduleDraft {
            credit_type: "USD".into(),
            do_not_invoice: true,
            recurring: Some(RecurringDraft { charge: amount_charge("10"), ..Default::default() }),
            ..Default::default()
        }),
        ..prepaid(&f)
    };
    let p = "invoice_schedule.recurring_schedule";
    assert_eq!(
        fields(d, &f.refs),
        [
            format!("{p}.amount_distribution"),
            format!("{p}.frequency"),
            format!("{p}.starting_at"),
            format!("{p}.ending_before")
        ]
    );
}

#[test]
fn recurring_schedule_follows_the_amount_rules_and_bounds() {
    let f = fixture();
    let with = |charge: ChargeDraft, from: DateTime<Utc>, to: DateTime<Utc>, dist: Distribution| {
        let d = CommitDraft {
            invoice_schedule: Some(InvoiceScheduleDraft {
                credit_type: "USD".into(),
                do_not_invoice: true,
                recurring: Some(RecurringDraft {
                    distribution: Parsed::Valid(dist),
                    frequency: Parsed::Valid(Frequency::Monthly),
                    starting_at: Parsed::Valid(from),
                    ending_before: Parsed::Valid(to),
                    charge,
                }),
                ..Default::default()
            }),
            ..prepaid(&f)
        };
        fields(d, &f.refs)
    };
    let p = "invoice_schedule.recurring_schedule";
    let year = (at(2026, 1, 1), at(2027, 1, 1));
    assert!(with(amount_charge("120"), year.0, year.1, Distribution::DividedRounded).is_empty());
    assert_eq!(
        with(
            ChargeDraft { amount: dec("1"), quantity: dec("2"), ..Default::default() },
            year.0,
            year.1,
            Distribution::Each
        ),
        [format!("{p}.quantity")]
    );
    assert_eq!(with(amount_charge("1"), year.1, year.0, Distribution::Each), [format!("{p}.ending_before")]);
    assert_eq!(
        with(amount_charge("1"), at(1970, 1, 1), at(2100, 1, 1), Distribution::Each),
        [format!("{p}.ending_before")],
        "too many charges"
    );
    assert_eq!(
        with(amount_charge("0.05"), at(2026, 1, 1), at(2026, 10, 1), Distribution::DividedRounded),
        [format!("{p}.amount")],
        "nine rounded charges of 0.01 overshoot 0.05"
    );
}

#[test]
fn specifiers_cannot_be_combined_with_product_ids_or_tags() {
    let f = fixture();
    let d = CommitDraft {
        applicable_product_ids: vec![Parsed::Valid(f.product)],
        applicable_product_tags: vec!["vod".into()],
        specifiers: vec![SpecifierDraft { product_tags: vec!["vod".into()], ..Default::default() }],
        ..prepaid(&f)
    };
    let v = violations(d, &f.refs);
    assert_eq!(
        v,
        [
            "specifiers: cannot be combined with applicable_product_ids",
            "specifiers: cannot be combined with applicable_product_tags"
        ]
    );
}

#[test]
fn applicable_products_must_exist_and_not_repeat() {
    let f = fixture();
    let d = CommitDraft {
        applicable_product_ids: vec![
            Parsed::Valid(f.other_product),
            Parsed::Valid(ProductId::generate()),
            Parsed::Valid(f.other_product),
        ],
        ..prepaid(&f)
    };
    assert_eq!(fields(d, &f.refs), ["applicable_product_ids[1]", "applicable_product_ids[2]"]);
}

#[test]
fn specifier_needs_a_criterion_and_exclusions_need_tags() {
    let f = fixture();
    let d = CommitDraft {
        specifiers: vec![
            SpecifierDraft::default(),
            SpecifierDraft { product_tags: vec!["vod".into()], exclude: vec![vec![]], ..Default::default() },
            SpecifierDraft { product_id: Parsed::Valid(ProductId::generate()), ..Default::default() },
        ],
        ..prepaid(&f)
    };
    assert_eq!(
        fields(d, &f.refs),
        ["specifiers[0]", "specifiers[1].exclude[0].product_tags", "specifiers[2].product_id"]
    );
}

#[test]
fn name_when_given_is_not_empty() {
    let f = fixture();
    let d = CommitDraft { name: Some(String::new()), ..prepaid(&f) };
    assert_eq!(fields(d, &f.refs), ["name"]);
    let d = CommitDraft { name: Some("Annual commit".into()), ..prepaid(&f) };
    assert!(fields(d, &f.refs).is_empty());
}

#[test]
fn uniqueness_key_has_1_to_128_characters() {
    let f = fixture();
    for (key, ok) in [("", false), ("k", true), (&"k".repeat(128)[..], true), (&"k".repeat(129)[..], false)] {
        let d = CommitDraft { uniqueness_key: Some(key.to_owned()), ..prepaid(&f) };
        assert_eq!(fields(d, &f.refs).is_empty(), ok, "key of {} characters", key.len());
    }
}

#[test]
fn custom_fields_are_bounded() {
    let f = fixture();
    let many = (0..51).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let d = CommitDraft { custom_fields: many, ..prepaid(&f) };
    assert_eq!(fields(d, &f.refs), ["custom_fields"]);
    let d = CommitDraft { custom_fields: BTreeMap::from([(String::new(), "v".into())]), ..prepaid(&f) };
    assert_eq!(fields(d, &f.refs), ["custom_fields[\"\"]"]);
}

#[test]
fn every_breach_is_reported_at_once() {
    let f = fixture();
    let d = CommitDraft {
        invoice_schedule: None,
        invoice_contract_id: Parsed::Absent,
        name: Some(String::new()),
        uniqueness_key: Some(String::new()),
        access_items: vec![access("-5", at(2026, 1, 1), at(2027, 1, 1))],
        ..postpaid(&f)
    };
    assert_eq!(
        fields(d, &f.refs),
        [
            "access_schedule.schedule_items[0].amount",
            "invoice_schedule",
            "invoice_contract_id",
            "name",
            "uniqueness_key"
        ]
    );
}

#[test]
fn lists_are_bounded_at_their_limit_exactly() {
    let f = fixture();
    let access_items = |n: usize| vec![access("1", at(2026, 1, 1), at(2027, 1, 1)); n];
    assert!(
        fields(CommitDraft { access_items: access_items(MAX_ACCESS_ITEMS), ..prepaid(&f) }, &f.refs)
            .is_empty()
    );
    assert_eq!(
        fields(CommitDraft { access_items: access_items(MAX_ACCESS_ITEMS + 1), ..prepaid(&f) }, &f.refs),
        ["access_schedule.schedule_items"]
    );

    let invoiced = |n: usize| CommitDraft {
        invoice_schedule: Some(InvoiceScheduleDraft {
            credit_type: "USD".into(),
            do_not_invoice: true,
            items: vec![
                InvoiceItemDraft {
                    timestamp: Parsed::Valid(at(2026, 2, 1)),
                    charge: amount_charge("1")
                };
                n
            ],
            ..Default::default()
        }),
        ..prepaid(&f)
    };
    assert!(fields(invoiced(MAX_INVOICE_ITEMS), &f.refs).is_empty());
    assert_eq!(fields(invoiced(MAX_INVOICE_ITEMS + 1), &f.refs), ["invoice_schedule.schedule_items"]);

    let tags = |n: usize| (0..n).map(|i| format!("tag-{i}")).collect::<Vec<_>>();
    assert!(fields(CommitDraft { applicable_product_tags: tags(100), ..prepaid(&f) }, &f.refs).is_empty());
    assert_eq!(
        fields(CommitDraft { applicable_product_tags: tags(101), ..prepaid(&f) }, &f.refs),
        ["applicable_product_tags"]
    );

    let products: Vec<ProductId> = (0..101).map(|_| ProductId::generate()).collect();
    let refs =
        CommitRefs { customer_exists: true, products: products.iter().copied().chain([f.product]).collect() };
    let ids = |n: usize| products[..n].iter().map(|p| Parsed::Valid(*p)).collect::<Vec<_>>();
    assert!(fields(CommitDraft { applicable_product_ids: ids(100), ..prepaid(&f) }, &refs).is_empty());
    assert_eq!(
        fields(CommitDraft { applicable_product_ids: ids(101), ..prepaid(&f) }, &refs),
        ["applicable_product_ids"]
    );

    let specifiers =
        |n: usize| vec![SpecifierDraft { product_tags: vec!["vod".into()], ..Default::default() }; n];
    assert!(fields(CommitDraft { specifiers: specifiers(100), ..prepaid(&f) }, &f.refs).is_empty());
    assert_eq!(fields(CommitDraft { specifiers: specifiers(101), ..prepaid(&f) }, &f.refs), ["specifiers"]);
}

#[test]
fn tags_are_codes_and_descriptions_are_bounded() {
    let f = fixture();
    let d = CommitDraft { applicable_product_tags: vec![" padded".into()], ..prepaid(&f) };
    assert_eq!(fields(d, &f.refs), ["applicable_product_tags[0]"]);
    let d = CommitDraft { description: Some("d".repeat(2000)), ..prepaid(&f) };
    assert!(fields(d, &f.refs).is_empty());
    let d = CommitDraft { description: Some("d".repeat(2001)), ..prepaid(&f) };
    assert_eq!(fields(d, &f.refs), ["description"]);
}

#[test]
fn a_recurring_schedule_may_make_exactly_the_most_charges_and_round_its_last_to_zero() {
    let f = fixture();
    let with = |charge: &str, from: DateTime<Utc>, to: DateTime<Utc>| {
        let d = CommitDraft {
            invoice_schedule: Some(InvoiceScheduleDraft {
                credit_type: "USD".into(),
                do_not_invoice: true,
                recurring: Some(RecurringDraft {
                    distribution: Parsed::Valid(Distribution::DividedRounded),
                    frequency: Parsed::Valid(Frequency::Monthly),
                    starting_at: Parsed::Valid(from),
                    ending_before: Parsed::Valid(to),
                    charge: amount_charge(charge),
                }),
                ..Default::default()
            }),
            ..prepaid(&f)
        };
        fields(d, &f.refs)
    };
    // 1,000 monthly charges: January 1970 up to May 2053.
    assert!(with("1000", at(1970, 1, 1), at(2053, 5, 1)).is_empty());
    assert_eq!(
        with("1000", at(1970, 1, 1), at(2053, 5, 2)),
        ["invoice_schedule.recurring_schedule.ending_before"]
    );
    // 0.09 over ten months: nine charges of 0.01 and a last one of exactly zero.
    assert!(with("0.09", at(2026, 1, 1), at(2026, 11, 1)).is_empty());
}

#[test]
fn a_malformed_invoice_charge_is_reported_once_not_also_as_a_total_mismatch() {
    let f = fixture();
    let mut d = postpaid(&f);
    d.invoice_schedule.as_mut().unwrap().items[0].charge =
        ChargeDraft { amount: dec("999"), unit_price: dec("1"), ..Default::default() };
    assert_eq!(fields(d, &f.refs), ["invoice_schedule.schedule_items[0].unit_price"]);
}
