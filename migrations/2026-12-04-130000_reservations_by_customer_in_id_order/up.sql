-- A customer's reservations in id order, their state a key column too. The index of
-- 2026-12-04-120000 left a customer's list of reservations (ORDER BY id LIMIT n) to the
-- primary key when planned on a table analyzed empty: an ordered walk of the whole
-- org's reservations filtered by customer, kept for the connection. With `id` after the
-- customer, the list reads the customer's entries in order, and the open holds' probe
-- (org, customer, a bound state) checks the state in the index before reading a row.
CREATE INDEX usage_reservations_customer ON usage_reservations (org_id, customer_id, id, state);
DROP INDEX usage_reservations_customer_state;
