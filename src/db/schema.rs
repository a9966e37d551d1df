// @generated automatically by Diesel CLI.

diesel::table! {
    allowance_limits (org_id, customer_id) {
        org_id -> Uuid,
        customer_id -> Uuid,
        max_amount_per_transaction -> Nullable<Numeric>,
        max_amount_per_day -> Nullable<Numeric>,
        max_amount_per_month -> Nullable<Numeric>,
        max_usage_per_transaction -> Nullable<Numeric>,
        max_usage_per_day -> Nullable<Numeric>,
        max_usage_per_month -> Nullable<Numeric>,
        tolerance_percent -> Nullable<Numeric>,
        block_not_included -> Bool,
        soft -> Bool,
        warning_thresholds -> Array<Numeric>,
        service_allowances -> Jsonb,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        currency -> Text,
        created_by -> Nullable<Uuid>,
        updated_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        org_id -> Uuid,
        secret_sha256 -> Bytea,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        name -> Text,
        scopes -> Array<Text>,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        created_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    applied_promotion_cycles (org_id, applied_id, cycle_start) {
        org_id -> Uuid,
        applied_id -> Uuid,
        cycle_start -> Timestamptz,
        used -> Numeric,
    }
}

diesel::table! {
    applied_promotion_drawdowns (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        applied_id -> Uuid,
        cycle_start -> Timestamptz,
        amount -> Numeric,
        effective_at -> Timestamptz,
        source_id -> Uuid,
        product_id -> Uuid,
        created_at -> Timestamptz,
        reverses -> Nullable<Uuid>,
    }
}

diesel::table! {
    applied_promotions (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        customer_id -> Uuid,
        promotion_id -> Uuid,
        product_id -> Nullable<Uuid>,
        priority -> Numeric,
        starts_at -> Timestamptz,
        ends_at -> Nullable<Timestamptz>,
        commitment_id -> Nullable<Uuid>,
        relation_id -> Nullable<Text>,
        added_at -> Timestamptz,
        removed_at -> Nullable<Timestamptz>,
        removal_context -> Nullable<Text>,
        total_used -> Numeric,
        created_by -> Nullable<Uuid>,
        updated_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    balance_alerts (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        customer_id -> Uuid,
        credit_type -> Text,
        threshold_kind -> Text,
        threshold -> Numeric,
        state -> Text,
        state_changed_at -> Timestamptz,
        available -> Numeric,
        created_at -> Timestamptz,
        created_by -> Nullable<Uuid>,
        updated_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    billing_promos (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        promo_type -> Text,
        validity_start -> Timestamptz,
        validity_end -> Nullable<Timestamptz>,
        product_type -> Text,
        product_id -> Uuid,
        product_n -> Int4,
        reward_product_type -> Text,
        reward_product_id -> Uuid,
        reward_product_m -> Int4,
        created_at -> Timestamptz,
        created_by -> Uuid,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        version -> Int8,
        updated_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    commit_ledger (org_id, id, effective_at) {
        org_id -> Uuid,
        id -> Uuid,
        commit_id -> Uuid,
        segment_idx -> Int4,
        kind -> Text,
        amount -> Numeric,
        effective_at -> Timestamptz,
        source_id -> Nullable<Uuid>,
        product_id -> Nullable<Uuid>,
        reason -> Nullable<Text>,
        request_id -> Nullable<Text>,
        request_hash -> Nullable<Bytea>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    commit_ledger_requests (org_id, request_id) {
        org_id -> Uuid,
        request_id -> Text,
        entry_id -> Uuid,
        effective_at -> Timestamptz,
    }
}

diesel::table! {
    commit_segments (org_id, commit_id, idx) {
        org_id -> Uuid,
        commit_id -> Uuid,
        idx -> Int4,
        customer_id -> Uuid,
        starting_at -> Timestamptz,
        ending_before -> Timestamptz,
        amount -> Numeric,
        remaining -> Numeric,
        closed_at -> Nullable<Timestamptz>,
        close_kind -> Nullable<Text>,
        ledger_last_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    commitment_compensations (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        commitment_id -> Uuid,
        kind -> Text,
        scope -> Nullable<Text>,
        measure -> Nullable<Text>,
        period_start -> Nullable<Timestamptz>,
        period_end -> Nullable<Timestamptz>,
        amount -> Numeric,
        credit_type -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    commitment_edits (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        commitment_id -> Uuid,
        edited_by -> Uuid,
        edited_at -> Timestamptz,
        operations -> Jsonb,
    }
}

diesel::table! {
    commitment_periods (org_id, commitment_id, scope, measure, obligation_idx, period_start) {
        org_id -> Uuid,
        commitment_id -> Uuid,
        scope -> Text,
        measure -> Text,
        obligation_idx -> Int4,
        period_start -> Timestamptz,
        period_end -> Timestamptz,
        required -> Numeric,
        measured -> Numeric,
        shortfall -> Numeric,
        closed_at -> Timestamptz,
    }
}

diesel::table! {
    commitments (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        customer_id -> Uuid,
        subscription_id -> Nullable<Uuid>,
        promotion_id -> Nullable<Uuid>,
        device_id -> Nullable<Uuid>,
        starts_at -> Timestamptz,
        ends_at -> Timestamptz,
        terms -> Jsonb,
        status -> Text,
        successor_id -> Nullable<Uuid>,
        ended_at -> Nullable<Timestamptz>,
        next_check_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
        created_by -> Nullable<Uuid>,
        updated_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    commits (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        customer_id -> Uuid,
        product_id -> Uuid,
        commit_type -> Text,
        priority -> Numeric,
        credit_type -> Text,
        applicable_product_ids -> Array<Uuid>,
        applicable_product_tags -> Array<Text>,
        applicable_contract_ids -> Array<Text>,
        specifiers -> Jsonb,
        invoice_schedule -> Nullable<Jsonb>,
        custom_fields -> Jsonb,
        rate_type -> Nullable<Text>,
        name -> Nullable<Text>,
        description -> Nullable<Text>,
        invoice_contract_id -> Nullable<Uuid>,
        netsuite_sales_order_id -> Nullable<Text>,
        salesforce_opportunity_id -> Nullable<Text>,
        uniqueness_key -> Nullable<Text>,
        voided_at -> Nullable<Timestamptz>,
        void_reason -> Nullable<Text>,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        created_by -> Nullable<Uuid>,
        updated_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    credit_promotions (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        name -> Text,
        credit_type -> Text,
        amount_per_cycle -> Nullable<Numeric>,
        total_amount -> Nullable<Numeric>,
        cycle -> Text,
        applicable_product_ids -> Array<Uuid>,
        applicable_product_tags -> Array<Text>,
        created_at -> Timestamptz,
        created_by -> Nullable<Uuid>,
        updated_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    credit_types (org_id, code) {
        org_id -> Uuid,
        code -> Text,
        name -> Text,
        created_at -> Timestamptz,
        created_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    customers (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        external_id -> Text,
        name -> Text,
        time_zone -> Text,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        created_by -> Nullable<Uuid>,
        updated_by -> Nullable<Uuid>,
        holds_until -> Nullable<Timestamptz>,
        balance_alerts -> Int4,
        promotions_applied -> Int4,
        limits_version -> Int8,
    }
}

diesel::table! {
    drawdown_requests (org_id, idempotency_key) {
        org_id -> Uuid,
        idempotency_key -> Text,
        id -> Uuid,
        customer_id -> Uuid,
        request_hash -> Bytea,
        result -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    organizations (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    products (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        code -> Text,
        name -> Text,
        tags -> Array<Text>,
        service_type -> Nullable<Text>,
        service_family -> Nullable<Text>,
        kind -> Text,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        created_by -> Nullable<Uuid>,
        updated_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    promo_baskets (org_id, basket_id) {
        org_id -> Uuid,
        basket_id -> Text,
        customer_id -> Uuid,
        fingerprint -> Bytea,
        result -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    promo_rewards (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        customer_id -> Uuid,
        promo_id -> Uuid,
        product_id -> Uuid,
        units -> Int8,
        redeemed_units -> Int8,
        basket_id -> Text,
        granted_at -> Timestamptz,
    }
}

diesel::table! {
    request_ids (org_id, operation, request_id) {
        org_id -> Uuid,
        operation -> Text,
        request_id -> Text,
        fingerprint -> Bytea,
        resource -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    reservation_extensions (org_id, request_id) {
        org_id -> Uuid,
        request_id -> Text,
        reservation_id -> Uuid,
        fingerprint -> Bytea,
        answer -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    reward_redemptions (org_id, request_id) {
        org_id -> Uuid,
        request_id -> Text,
        reward_id -> Uuid,
        units -> Int8,
        fingerprint -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    token_secrets (id) {
        id -> Int2,
        secret -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    usage_alerts (org_id, customer_id, scope, measure, window_kind, first_day) {
        org_id -> Uuid,
        customer_id -> Uuid,
        scope -> Text,
        measure -> Text,
        window_kind -> Text,
        first_day -> Date,
        percent -> Numeric,
        raised_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    usage_event_keys (org_id, event_id) {
        org_id -> Uuid,
        event_id -> Text,
        customer_id -> Uuid,
        id -> Uuid,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    usage_events (org_id, customer_id, id, recorded_at) {
        org_id -> Uuid,
        event_id -> Text,
        id -> Uuid,
        customer_id -> Uuid,
        product_id -> Uuid,
        quantity -> Numeric,
        amount -> Numeric,
        credit_type -> Text,
        occurred_at -> Timestamptz,
        decision -> Text,
        fingerprint -> Bytea,
        outcome -> Nullable<Jsonb>,
        recorded_at -> Timestamptz,
        contract_id -> Nullable<Text>,
        voided_at -> Nullable<Timestamptz>,
        voided_by -> Nullable<Uuid>,
        void_reason -> Nullable<Text>,
        outcome_packed -> Nullable<Bytea>,
    }
}

diesel::table! {
    usage_reservations (org_id, id) {
        org_id -> Uuid,
        id -> Uuid,
        request_id -> Text,
        customer_id -> Uuid,
        product_id -> Uuid,
        credit_type -> Text,
        group_values -> Jsonb,
        contract_id -> Nullable<Text>,
        requested_quantity -> Numeric,
        requested_amount -> Numeric,
        granted_quantity -> Numeric,
        granted_amount -> Numeric,
        state -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        settled_at -> Nullable<Timestamptz>,
        event_id -> Nullable<Text>,
        fingerprint -> Bytea,
        answer -> Bytea,
        created_by -> Nullable<Uuid>,
        updated_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    usage_totals (org_id, customer_id, window_kind, first_day, product_id, credit_type) {
        org_id -> Uuid,
        customer_id -> Uuid,
        window_kind -> Text,
        first_day -> Date,
        product_id -> Uuid,
        amount -> Numeric,
        quantity -> Numeric,
        credit_type -> Text,
    }
}

diesel::table! {
    violation_sequences (org_id) {
        org_id -> Uuid,
        last_seq -> Int8,
        retained_from -> Int8,
    }
}

diesel::table! {
    violations (org_id, seq, recorded_at) {
        org_id -> Uuid,
        seq -> Int8,
        id -> Uuid,
        kind -> Text,
        customer_id -> Nullable<Uuid>,
        occurred_at -> Timestamptz,
        recorded_at -> Timestamptz,
        detail -> Jsonb,
    }
}

diesel::joinable!(api_keys -> organizations (org_id));
diesel::joinable!(balance_alerts -> organizations (org_id));
diesel::joinable!(credit_types -> organizations (org_id));
diesel::joinable!(customers -> organizations (org_id));
diesel::joinable!(products -> organizations (org_id));
diesel::joinable!(request_ids -> organizations (org_id));
diesel::joinable!(reservation_extensions -> organizations (org_id));
diesel::joinable!(usage_reservations -> organizations (org_id));
diesel::joinable!(violation_sequences -> organizations (org_id));

diesel::allow_tables_to_appear_in_same_query!(
    allowance_limits,
    api_keys,
    applied_promotion_cycles,
    applied_promotion_drawdowns,
    applied_promotions,
    balance_alerts,
    billing_promos,
    commit_ledger,
    commit_ledger_requests,
    commit_segments,
    commitment_compensations,
    commitment_edits,
    commitment_periods,
    commitments,
    commits,
    credit_promotions,
    credit_types,
    customers,
    drawdown_requests,
    organizations,
    products,
    promo_baskets,
    promo_rewards,
    request_ids,
    reservation_extensions,
    reward_redemptions,
    token_secrets,
    usage_alerts,
    usage_event_keys,
    usage_events,
    usage_reservations,
    usage_totals,
    violation_sequences,
    violations,
);
