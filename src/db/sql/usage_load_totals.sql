SELECT t.customer_id, t.product_id, t.window_kind, t.first_day, t.credit_type, t.amount, t.quantity
FROM unnest($2::uuid[], $3::text[], $4::date[]) AS w(customer_id, window_kind, first_day)
CROSS JOIN LATERAL (SELECT * FROM usage_totals t WHERE t.org_id = $1 AND t.customer_id = w.customer_id
   AND t.window_kind = w.window_kind AND t.first_day = w.first_day OFFSET 0) t
