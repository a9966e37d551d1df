-- Credit types are compared case-insensitively and stored upper-case ("usd" was once
-- kept as written, and so never met "USD").
UPDATE commits SET credit_type = upper(credit_type) WHERE credit_type <> upper(credit_type);
UPDATE usage_events SET credit_type = upper(credit_type) WHERE credit_type <> upper(credit_type);
UPDATE credit_promotions SET credit_type = upper(credit_type) WHERE credit_type <> upper(credit_type);
UPDATE commitment_compensations SET credit_type = upper(credit_type) WHERE credit_type <> upper(credit_type);

-- Limits on rated amount are in one currency, and usage totals are kept per credit type,
-- so an amount in another currency is never summed into them.
ALTER TABLE allowance_limits ADD COLUMN currency text NOT NULL DEFAULT 'USD';
ALTER TABLE allowance_limits ALTER COLUMN currency DROP DEFAULT;

ALTER TABLE usage_totals ADD COLUMN credit_type text;
-- Totals so far summed every currency together: recount them from the events.
DELETE FROM usage_totals;
INSERT INTO usage_totals (org_id, customer_id, window_kind, first_day, product_id, credit_type, amount, quantity)
SELECT e.org_id, e.customer_id, w.kind, w.first_day, e.product_id, e.credit_type, sum(e.amount), sum(e.quantity)
FROM usage_events e
JOIN customers c ON c.org_id = e.org_id AND c.id = e.customer_id
CROSS JOIN LATERAL (VALUES
    ('DAY', (e.occurred_at AT TIME ZONE c.time_zone)::date),
    ('MONTH', date_trunc('month', e.occurred_at AT TIME ZONE c.time_zone)::date)
) AS w(kind, first_day)
WHERE e.decision <> 'BLOCKED' AND e.voided_at IS NULL
GROUP BY e.org_id, e.customer_id, w.kind, w.first_day, e.product_id, e.credit_type;
ALTER TABLE usage_totals ALTER COLUMN credit_type SET NOT NULL;
ALTER TABLE usage_totals DROP CONSTRAINT usage_totals_pkey;
ALTER TABLE usage_totals ADD PRIMARY KEY (org_id, customer_id, window_kind, first_day, product_id, credit_type);

-- Custom credit types (anything but an ISO 4217 currency) are declared per org before
-- use, so a typo is an error rather than a new, silently separate balance.
CREATE TABLE credit_types (
    org_id     uuid NOT NULL REFERENCES organizations (id),
    code       text NOT NULL CHECK (code = upper(code) AND char_length(code) BETWEEN 1 AND 64),
    name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL,
    created_by uuid,
    PRIMARY KEY (org_id, code)
);
-- Types already in use become declared, so what worked keeps working.
INSERT INTO credit_types (org_id, code, name, created_at)
SELECT org_id, credit_type, credit_type, now()
FROM (
    SELECT org_id, credit_type FROM commits
    UNION SELECT org_id, credit_type FROM credit_promotions
    UNION SELECT org_id, credit_type FROM usage_events
) used
WHERE credit_type !~ '^[A-Z]{3}$'
ON CONFLICT DO NOTHING;

ALTER TABLE credit_types ENABLE ROW LEVEL SECURITY;
ALTER TABLE credit_types FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON credit_types
    USING (org_id = billing_current_org()) WITH CHECK (org_id = billing_current_org());
GRANT SELECT, INSERT, UPDATE, DELETE ON credit_types TO billing_app;
