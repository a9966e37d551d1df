CREATE INDEX usage_reservations_customer_state ON usage_reservations (org_id, customer_id, state);
DROP INDEX usage_reservations_customer;
