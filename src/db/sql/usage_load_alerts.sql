SELECT a.customer_id, a.scope, a.measure, a.window_kind, a.first_day, a.percent
FROM unnest($2::uuid[], $3::text[], $4::date[]) AS w(customer_id, window_kind, first_day)
CROSS JOIN LATERAL (SELECT * FROM usage_alerts a WHERE a.org_id = $1 AND a.customer_id = w.customer_id
   AND a.window_kind = w.window_kind AND a.first_day = w.first_day OFFSET 0) a
