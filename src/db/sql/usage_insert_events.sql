WITH new AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::uuid[],
   $6::numeric[], $7::numeric[], $8::text[], $9::timestamptz[], $10::text[], $11::text[],
   $12::bytea[], $13::bytea[], $14::timestamptz[]) AS r(org_id, event_id, id, customer_id, product_id,
   quantity, amount, credit_type, occurred_at, contract_id, decision, fingerprint, outcome_packed,
   recorded_at)),
keys AS (INSERT INTO usage_event_keys (org_id, event_id, customer_id, id, recorded_at)
   SELECT org_id, event_id, customer_id, id, recorded_at FROM new)
INSERT INTO usage_events (org_id, event_id, id, customer_id, product_id, quantity, amount,
   credit_type, occurred_at, contract_id, decision, fingerprint, outcome_packed, recorded_at)
SELECT * FROM new
