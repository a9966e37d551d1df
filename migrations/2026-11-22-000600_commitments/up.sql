-- Commitments (seeds 000 and 001): obligations with a violation policy, their edit
-- history, closed periods and compensations.

-- Account-scope obligations count usage recorded under the commitment's subscription.
ALTER TABLE usage_events ADD COLUMN contract_id text;

CREATE TABLE commitments (
    org_id          uuid NOT NULL,
    id              uuid NOT NULL,
    customer_id     uuid NOT NULL,
    -- Copies of terms fields that lists filter on.
    subscription_id uuid,
    promotion_id    uuid,
    device_id       uuid,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    -- The terms as validated domain values (serde JSON: the commitment's JSON form).
    terms           jsonb NOT NULL,
    status          text NOT NULL CHECK (status IN ('ACTIVE', 'FULFILLED', 'VIOLATED', 'TERMINATED', 'ENDED')),
    successor_id    uuid,
    ended_at        timestamptz,
    -- When the evaluator has something to do (a period ends, or the term does).
    next_check_at   timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    version         bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id),
    CHECK (starts_at < ends_at)
);

CREATE INDEX commitments_customer_idx ON commitments (org_id, customer_id, id);
CREATE INDEX commitments_due_idx ON commitments (next_check_at) WHERE next_check_at IS NOT NULL;

-- Every applied patch: who, when, the operations.
CREATE TABLE commitment_edits (
    org_id        uuid NOT NULL,
    id            uuid NOT NULL,
    commitment_id uuid NOT NULL,
    edited_by     uuid NOT NULL,
    edited_at     timestamptz NOT NULL,
    operations    jsonb NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, commitment_id) REFERENCES commitments (org_id, id)
);

CREATE INDEX commitment_edits_commitment_idx ON commitment_edits (org_id, commitment_id, id);

-- Closed periods: one row per obligation and period, written once.
CREATE TABLE commitment_periods (
    org_id         uuid NOT NULL,
    commitment_id  uuid NOT NULL,
    scope          text NOT NULL CHECK (scope IN ('customer', 'account')),
    measure        text NOT NULL CHECK (measure IN ('spend', 'usage')),
    obligation_idx integer NOT NULL,
    period_start   timestamptz NOT NULL,
    period_end     timestamptz NOT NULL,
    required       numeric NOT NULL,
    measured       numeric NOT NULL,
    shortfall      numeric NOT NULL CHECK (shortfall >= 0),
    closed_at      timestamptz NOT NULL,
    PRIMARY KEY (org_id, commitment_id, scope, measure, obligation_idx, period_start),
    FOREIGN KEY (org_id, commitment_id) REFERENCES commitments (org_id, id)
);

-- Compensations owed under a commitment's policy: shortfalls and penalties.
CREATE TABLE commitment_compensations (
    org_id        uuid NOT NULL,
    id            uuid NOT NULL,
    commitment_id uuid NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('SHORTFALL', 'EARLY_TERMINATION')),
    scope         text,
    measure       text,
    period_start  timestamptz,
    period_end    timestamptz,
    amount        numeric NOT NULL CHECK (amount >= 0),
    credit_type   text NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, commitment_id) REFERENCES commitments (org_id, id)
);

CREATE INDEX commitment_compensations_commitment_idx ON commitment_compensations (org_id, commitment_id, id);

ALTER TABLE applied_promotions
    ADD CONSTRAINT applied_promotions_commitment_fkey FOREIGN KEY (org_id, commitment_id) REFERENCES commitments (org_id, id);
