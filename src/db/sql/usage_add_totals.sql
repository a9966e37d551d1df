INSERT INTO usage_totals
   (org_id, customer_id, window_kind, first_day, product_id, credit_type, amount, quantity)
SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::date[], $5::uuid[], $6::text[],
   $7::numeric[], $8::numeric[])
ON CONFLICT (org_id, customer_id, window_kind, first_day, product_id, credit_type) DO UPDATE
SET amount = usage_totals.amount + EXCLUDED.amount, quantity = usage_totals.quantity + EXCLUDED.quantity
