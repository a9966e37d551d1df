ALTER TABLE applied_promotion_drawdowns DROP CONSTRAINT applied_promotion_drawdowns_amount_check;
DELETE FROM applied_promotion_drawdowns WHERE reverses IS NOT NULL;
ALTER TABLE applied_promotion_drawdowns ADD CONSTRAINT applied_promotion_drawdowns_amount_check CHECK (amount > 0);
ALTER TABLE applied_promotion_drawdowns DROP COLUMN reverses;

DROP INDEX usage_events_customer_time_idx;
CREATE INDEX usage_events_customer_time_idx ON usage_events (org_id, customer_id, occurred_at)
    WHERE decision <> 'BLOCKED';
DROP INDEX usage_events_customer_id_idx;
ALTER TABLE usage_events DROP COLUMN voided_at, DROP COLUMN voided_by, DROP COLUMN void_reason;
