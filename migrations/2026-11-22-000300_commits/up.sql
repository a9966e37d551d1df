-- Commits (seed 004): balances granted over access segments and drawn down by usage.

CREATE TABLE commits (
    org_id                    uuid NOT NULL,
    id                        uuid NOT NULL,
    customer_id               uuid NOT NULL,
    product_id                uuid NOT NULL,
    commit_type               text NOT NULL CHECK (commit_type IN ('PREPAID', 'POSTPAID')),
    priority                  numeric NOT NULL,
    credit_type               text NOT NULL,
    applicable_product_ids    uuid[] NOT NULL DEFAULT '{}',
    applicable_product_tags   text[] NOT NULL DEFAULT '{}',
    applicable_contract_ids   text[] NOT NULL DEFAULT '{}',
    -- Specifiers and the invoice schedule as validated domain values (serde JSON).
    specifiers                jsonb NOT NULL DEFAULT '[]',
    invoice_schedule          jsonb,
    custom_fields             jsonb NOT NULL DEFAULT '{}',
    rate_type                 text,
    name                      text,
    description               text,
    invoice_contract_id       uuid,
    netsuite_sales_order_id   text,
    salesforce_opportunity_id text,
    uniqueness_key            text,
    voided_at                 timestamptz,
    void_reason               text,
    version                   bigint NOT NULL DEFAULT 1,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id),
    FOREIGN KEY (org_id, product_id) REFERENCES products (org_id, id),
    -- NULL keys are distinct: only keys actually given must be unique.
    CONSTRAINT commits_uniqueness_key UNIQUE (org_id, uniqueness_key)
);

CREATE INDEX commits_customer_idx ON commits (org_id, customer_id, id);

-- One row per access schedule item. `remaining` is the live balance; the CHECK makes a
-- negative balance impossible whatever the code does.
CREATE TABLE commit_segments (
    org_id        uuid NOT NULL,
    commit_id     uuid NOT NULL,
    idx           integer NOT NULL CHECK (idx >= 0),
    customer_id   uuid NOT NULL,
    starting_at   timestamptz NOT NULL,
    ending_before timestamptz NOT NULL,
    amount        numeric NOT NULL CHECK (amount > 0),
    remaining     numeric NOT NULL CHECK (remaining >= 0),
    -- Set once the segment takes no more drawdowns: ended (EXPIRED / TRUED_UP) or VOIDED.
    closed_at     timestamptz,
    close_kind    text CHECK (close_kind IN ('EXPIRED', 'TRUED_UP', 'VOIDED')),
    PRIMARY KEY (org_id, commit_id, idx),
    FOREIGN KEY (org_id, commit_id) REFERENCES commits (org_id, id),
    CHECK (starting_at < ending_before),
    CHECK ((closed_at IS NULL) = (close_kind IS NULL))
);

-- Open segments of a customer, for the drawdown engine.
CREATE INDEX commit_segments_open_idx ON commit_segments (org_id, customer_id, commit_id, idx)
    WHERE closed_at IS NULL;
-- Open segments by end, for the job that closes ended segments.
CREATE INDEX commit_segments_due_idx ON commit_segments (ending_before) WHERE closed_at IS NULL;

-- Every change of a segment's balance. Signed amounts: the sum of a segment's entries is
-- its remaining balance.
CREATE TABLE commit_ledger (
    org_id          uuid NOT NULL,
    id              uuid NOT NULL,
    commit_id       uuid NOT NULL,
    segment_idx     integer NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('GRANT', 'DRAWDOWN', 'EXPIRY', 'ADJUSTMENT', 'TRUE_UP', 'VOID')),
    amount          numeric NOT NULL,
    effective_at    timestamptz NOT NULL,
    source_id       uuid,
    product_id      uuid,
    reason          text,
    -- For adjustments sent with a request id: retries find the first entry.
    request_id      text,
    request_hash    bytea,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, commit_id, segment_idx) REFERENCES commit_segments (org_id, commit_id, idx)
);

CREATE INDEX commit_ledger_order_idx ON commit_ledger (org_id, commit_id, effective_at, id);
CREATE UNIQUE INDEX commit_ledger_request_idx ON commit_ledger (org_id, request_id) WHERE request_id IS NOT NULL;

-- ApplyDrawdown calls by idempotency key, with the answer given, so a retry returns it.
CREATE TABLE drawdown_requests (
    org_id          uuid NOT NULL,
    idempotency_key text NOT NULL,
    id              uuid NOT NULL,
    customer_id     uuid NOT NULL,
    request_hash    bytea NOT NULL,
    result          jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (org_id, idempotency_key),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id)
);
