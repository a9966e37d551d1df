-- Allowance limits (seed 003), usage events and totals, and the violation feed.

CREATE TABLE allowance_limits (
    org_id                     uuid NOT NULL,
    customer_id                uuid NOT NULL,
    max_amount_per_transaction numeric CHECK (max_amount_per_transaction >= 0),
    max_amount_per_day         numeric CHECK (max_amount_per_day >= 0),
    max_amount_per_month       numeric CHECK (max_amount_per_month >= 0),
    max_usage_per_transaction  numeric CHECK (max_usage_per_transaction >= 0),
    max_usage_per_day          numeric CHECK (max_usage_per_day >= 0),
    max_usage_per_month        numeric CHECK (max_usage_per_month >= 0),
    tolerance_percent          numeric CHECK (tolerance_percent >= 0),
    block_not_included         boolean NOT NULL,
    soft                       boolean NOT NULL,
    warning_thresholds         numeric[] NOT NULL DEFAULT '{}',
    -- Service allowances as validated domain values (serde JSON): always read and
    -- changed together with the rest of the limits.
    service_allowances         jsonb NOT NULL DEFAULT '[]',
    version                    bigint NOT NULL DEFAULT 1,
    created_at                 timestamptz NOT NULL,
    updated_at                 timestamptz NOT NULL,
    PRIMARY KEY (org_id, customer_id),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id)
);

-- Usage per customer, product and calendar window (in the customer's time zone). Scope
-- totals (customer, service, type, family) are sums over the products a scope matches.
CREATE TABLE usage_totals (
    org_id      uuid NOT NULL,
    customer_id uuid NOT NULL,
    window_kind text NOT NULL CHECK (window_kind IN ('DAY', 'MONTH')),
    first_day   date NOT NULL,
    product_id  uuid NOT NULL,
    amount      numeric NOT NULL,
    quantity    numeric NOT NULL,
    PRIMARY KEY (org_id, customer_id, window_kind, first_day, product_id),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id),
    FOREIGN KEY (org_id, product_id) REFERENCES products (org_id, id)
);

-- The highest warning threshold already notified per scope, measure and window.
CREATE TABLE usage_alerts (
    org_id      uuid NOT NULL,
    customer_id uuid NOT NULL,
    scope       text NOT NULL,
    measure     text NOT NULL,
    window_kind text NOT NULL CHECK (window_kind IN ('DAY', 'MONTH')),
    first_day   date NOT NULL,
    percent     numeric NOT NULL,
    PRIMARY KEY (org_id, customer_id, scope, measure, window_kind, first_day),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id)
);

-- Every decided event by its client id, with the answer given, so a replay returns it.
-- Blocked events are kept for that alone: they count toward nothing.
CREATE TABLE usage_events (
    org_id       uuid NOT NULL,
    event_id     text NOT NULL,
    id           uuid NOT NULL,
    customer_id  uuid NOT NULL,
    product_id   uuid NOT NULL,
    quantity     numeric NOT NULL,
    amount       numeric NOT NULL,
    credit_type  text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('ALLOWED', 'ALLOWED_OVER_LIMIT', 'BLOCKED')),
    fingerprint  bytea NOT NULL,
    outcome      jsonb NOT NULL,
    recorded_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, event_id)
);

-- Recorded spend and usage of a customer over time (commitment evaluation).
CREATE INDEX usage_events_customer_time_idx ON usage_events (org_id, customer_id, occurred_at)
    WHERE decision <> 'BLOCKED';

-- The last sequence number given in each organization's violation feed. Writers take
-- this row's lock (it is updated in their transaction), so sequence numbers commit in
-- order and a reader never sees N+1 before N.
CREATE TABLE violation_sequences (
    org_id         uuid PRIMARY KEY REFERENCES organizations (id),
    last_seq       bigint NOT NULL,
    -- Violations below this sequence number have been pruned.
    retained_from  bigint NOT NULL DEFAULT 1
);

-- The violation feed: append-only, per-org gapless sequence.
CREATE TABLE violations (
    org_id      uuid NOT NULL,
    seq         bigint NOT NULL,
    id          uuid NOT NULL,
    kind        text NOT NULL,
    customer_id uuid,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    detail      jsonb NOT NULL,
    PRIMARY KEY (org_id, seq)
);

CREATE INDEX violations_customer_idx ON violations (org_id, customer_id, seq);
