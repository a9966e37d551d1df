-- A usage decision reads the open holds of its customers with a plan kept for the
-- connection. Neither partial index on `state = 'OPEN'` serves that plan: with the state
-- bound, a partial index is never used, and with it written into the statement the
-- expiry index ties with the customer's on a table analyzed empty (a walk of every
-- organization's open holds by expiry). This index serves a probe by org, customer and a
-- bound state, and the customer's list of reservations, which scanned the whole org.
CREATE INDEX usage_reservations_customer_state ON usage_reservations (org_id, customer_id, state);
DROP INDEX usage_reservations_open;
