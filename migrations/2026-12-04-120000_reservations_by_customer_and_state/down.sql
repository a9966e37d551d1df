CREATE INDEX usage_reservations_open ON usage_reservations (org_id, customer_id)
    WHERE state = 'OPEN';
DROP INDEX usage_reservations_customer_state;
