DROP TABLE credit_types;

ALTER TABLE usage_totals DROP CONSTRAINT usage_totals_pkey;
DELETE FROM usage_totals;
INSERT INTO usage_totals (org_id, customer_id, window_kind, first_day, product_id, credit_type, amount, quantity)
SELECT e.org_id, e.customer_id, w.kind, w.first_day, e.product_id, '', sum(e.amount), sum(e.quantity)
FROM usage_events e
JOIN customers c ON c.org_id = e.org_id AND c.id = e.customer_id
CROSS JOIN LATERAL (VALUES
    ('DAY', (e.occurred_at AT TIME ZONE c.time_zone)::date),
    ('MONTH', date_trunc('month', e.occurred_at AT TIME ZONE c.time_zone)::date)
) AS w(kind, first_day)
WHERE e.decision <> 'BLOCKED'
GROUP BY e.org_id, e.customer_id, w.kind, w.first_day, e.product_id;
ALTER TABLE usage_totals DROP COLUMN credit_type;
ALTER TABLE usage_totals ADD PRIMARY KEY (org_id, customer_id, window_kind, first_day, product_id);

ALTER TABLE allowance_limits DROP COLUMN currency;
