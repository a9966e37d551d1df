-- The open holds of the customers $2 of org $1 at $4: reservations in state $3 (OPEN)
-- and not past their expiry, in id order. One probe of `usage_reservations_customer
-- (org_id, customer_id, id, state)` per customer, as `db::usage` explains for lookups by
-- keys, the state checked in the index; the state is bound so that no partial index on
-- `state = 'OPEN'` can serve it (see migration 2026-12-04-120000: the expiry index tied
-- with the customer's on a table analyzed empty). The Diesel form before, with
-- `customer_id = ANY`, read every reservation the org had ever made on each call (0.65
-- ms per call inside PostgreSQL after 5,000 reservations, and growing).
SELECT r.* FROM unnest($2::uuid[]) AS asked(id)
CROSS JOIN LATERAL (SELECT * FROM usage_reservations r WHERE r.org_id = $1 AND r.customer_id = asked.id
   AND r.state = $3 AND r.expires_at > $4 OFFSET 0) r
ORDER BY r.id
