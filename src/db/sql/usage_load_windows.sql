-- The totals and the notified alert levels of org $1 in the windows ($2 customer, $3 kind,
-- $4 first day), in one round trip: a row with a product is a total, one without an
-- alert level. Each is one index probe per window (see `usage.rs`).
WITH w AS MATERIALIZED (
    SELECT * FROM unnest($2::uuid[], $3::text[], $4::date[]) AS w(customer_id, window_kind, first_day)
)
SELECT t.customer_id, t.window_kind, t.first_day, t.product_id, t.credit_type, t.amount, t.quantity,
       NULL::text AS scope, NULL::text AS measure, NULL::numeric AS percent
FROM w CROSS JOIN LATERAL (SELECT * FROM usage_totals t WHERE t.org_id = $1 AND t.customer_id = w.customer_id
   AND t.window_kind = w.window_kind AND t.first_day = w.first_day OFFSET 0) t
UNION ALL
SELECT a.customer_id, a.window_kind, a.first_day, NULL, NULL, NULL, NULL, a.scope, a.measure, a.percent
FROM w CROSS JOIN LATERAL (SELECT * FROM usage_alerts a WHERE a.org_id = $1 AND a.customer_id = w.customer_id
   AND a.window_kind = w.window_kind AND a.first_day = w.first_day OFFSET 0) a
