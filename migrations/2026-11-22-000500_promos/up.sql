-- Billing promos (seed 002) with the rewards they grant, and credit promotions applied to
-- customers (seed 000's applied promotions), which draw down with usage.

CREATE TABLE billing_promos (
    org_id              uuid NOT NULL,
    id                  uuid NOT NULL,
    promo_type          text NOT NULL CHECK (promo_type IN ('REWARDS', 'BUY_N_TAKE_M')),
    validity_start      timestamptz NOT NULL,
    validity_end        timestamptz,
    product_type        text NOT NULL CHECK (product_type IN ('SERVICE', 'INVENTORY_VARIANT')),
    product_id          uuid NOT NULL,
    product_n           integer NOT NULL CHECK (product_n >= 1),
    reward_product_type text NOT NULL CHECK (reward_product_type IN ('SERVICE', 'INVENTORY_VARIANT')),
    reward_product_id   uuid NOT NULL,
    reward_product_m    integer NOT NULL CHECK (reward_product_m >= 1),
    created_at          timestamptz NOT NULL,
    created_by          uuid NOT NULL,
    updated_at          timestamptz NOT NULL,
    deleted_at          timestamptz,
    version             bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, product_id) REFERENCES products (org_id, id),
    FOREIGN KEY (org_id, reward_product_id) REFERENCES products (org_id, id),
    CHECK (validity_end IS NULL OR validity_start < validity_end)
);

CREATE INDEX billing_promos_product_idx ON billing_promos (org_id, product_id) WHERE deleted_at IS NULL;

-- Reward units granted to a customer.
CREATE TABLE promo_rewards (
    org_id         uuid NOT NULL,
    id             uuid NOT NULL,
    customer_id    uuid NOT NULL,
    promo_id       uuid NOT NULL,
    product_id     uuid NOT NULL,
    units          bigint NOT NULL CHECK (units > 0),
    redeemed_units bigint NOT NULL DEFAULT 0,
    basket_id      text NOT NULL,
    granted_at     timestamptz NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id),
    FOREIGN KEY (org_id, promo_id) REFERENCES billing_promos (org_id, id),
    CHECK (redeemed_units BETWEEN 0 AND units)
);

CREATE INDEX promo_rewards_customer_idx ON promo_rewards (org_id, customer_id, id);

-- Evaluated baskets by the client's basket id, with the answer, for replays.
CREATE TABLE promo_baskets (
    org_id      uuid NOT NULL,
    basket_id   text NOT NULL,
    customer_id uuid NOT NULL,
    fingerprint bytea NOT NULL,
    result      jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, basket_id)
);

-- Redemptions by request id, for replays.
CREATE TABLE reward_redemptions (
    org_id      uuid NOT NULL,
    request_id  text NOT NULL,
    reward_id   uuid NOT NULL,
    units       bigint NOT NULL CHECK (units > 0),
    fingerprint bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, request_id),
    FOREIGN KEY (org_id, reward_id) REFERENCES promo_rewards (org_id, id)
);

CREATE TABLE credit_promotions (
    org_id                  uuid NOT NULL,
    id                      uuid NOT NULL,
    name                    text NOT NULL,
    credit_type             text NOT NULL,
    amount_per_cycle        numeric CHECK (amount_per_cycle > 0),
    total_amount            numeric CHECK (total_amount > 0),
    cycle                   text NOT NULL CHECK (cycle IN ('MONTHLY', 'QUARTERLY', 'ANNUAL')),
    applicable_product_ids  uuid[] NOT NULL DEFAULT '{}',
    applicable_product_tags text[] NOT NULL DEFAULT '{}',
    created_at              timestamptz NOT NULL,
    PRIMARY KEY (org_id, id),
    CHECK (amount_per_cycle IS NOT NULL OR total_amount IS NOT NULL)
);

-- A credit promotion applied to a customer. `total_used` is what its drawdowns took in
-- all; per-cycle use is in applied_promotion_cycles.
CREATE TABLE applied_promotions (
    org_id          uuid NOT NULL,
    id              uuid NOT NULL,
    customer_id     uuid NOT NULL,
    promotion_id    uuid NOT NULL,
    product_id      uuid,
    priority        numeric NOT NULL,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz,
    commitment_id   uuid,
    relation_id     text,
    added_at        timestamptz NOT NULL,
    removed_at      timestamptz,
    removal_context text,
    total_used      numeric NOT NULL DEFAULT 0 CHECK (total_used >= 0),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id),
    FOREIGN KEY (org_id, promotion_id) REFERENCES credit_promotions (org_id, id),
    FOREIGN KEY (org_id, product_id) REFERENCES products (org_id, id),
    CHECK (ends_at IS NULL OR starts_at < ends_at)
);

CREATE INDEX applied_promotions_customer_idx ON applied_promotions (org_id, customer_id, id);

-- What each cycle of an applied promotion has given.
CREATE TABLE applied_promotion_cycles (
    org_id      uuid NOT NULL,
    applied_id  uuid NOT NULL,
    cycle_start timestamptz NOT NULL,
    used        numeric NOT NULL CHECK (used >= 0),
    PRIMARY KEY (org_id, applied_id, cycle_start),
    FOREIGN KEY (org_id, applied_id) REFERENCES applied_promotions (org_id, id)
);

-- Every drawdown of an applied promotion.
CREATE TABLE applied_promotion_drawdowns (
    org_id       uuid NOT NULL,
    id           uuid NOT NULL,
    applied_id   uuid NOT NULL,
    cycle_start  timestamptz NOT NULL,
    amount       numeric NOT NULL CHECK (amount > 0),
    effective_at timestamptz NOT NULL,
    source_id    uuid NOT NULL,
    product_id   uuid NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, applied_id) REFERENCES applied_promotions (org_id, id)
);

CREATE INDEX applied_promotion_drawdowns_applied_idx ON applied_promotion_drawdowns (org_id, applied_id, effective_at);
