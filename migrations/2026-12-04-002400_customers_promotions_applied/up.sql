-- How many promotions were ever applied to the customer (removed ones included), kept
-- with each application under the customer's lock: the usage path reads it from the row
-- it locks and reads applied promotions only for customers that have had some, one
-- statement fewer per usage transaction for the rest (see holds_until and
-- balance_alerts, which work the same way).
ALTER TABLE customers ADD COLUMN promotions_applied integer NOT NULL DEFAULT 0
    CHECK (promotions_applied >= 0);

UPDATE customers c SET promotions_applied = a.applied
    FROM (SELECT org_id, customer_id, count(*)::integer AS applied
          FROM applied_promotions GROUP BY org_id, customer_id) a
    WHERE c.org_id = a.org_id AND c.id = a.customer_id;
