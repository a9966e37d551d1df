-- Voided usage events: everything an event moved (window totals, commit balances,
-- credit promotion uses) is reversed in one transaction; the event stays, marked with
-- when, by which API key and why it was voided, and counts toward nothing after.
ALTER TABLE usage_events
    ADD COLUMN voided_at   timestamptz,
    ADD COLUMN voided_by   uuid,
    ADD COLUMN void_reason text;

-- Listing a customer's events in recording order (ids are time-ordered).
CREATE INDEX usage_events_customer_id_idx ON usage_events (org_id, customer_id, id);

-- Recorded spend and usage over time (commitment evaluation) counts only events that
-- stand: not blocked, not voided.
DROP INDEX usage_events_customer_time_idx;
CREATE INDEX usage_events_customer_time_idx ON usage_events (org_id, customer_id, occurred_at)
    WHERE decision <> 'BLOCKED' AND voided_at IS NULL;

-- A void reverses a credit promotion drawdown with a negative row naming the one it
-- reverses; every other row is a positive drawdown.
ALTER TABLE applied_promotion_drawdowns ADD COLUMN reverses uuid;
ALTER TABLE applied_promotion_drawdowns DROP CONSTRAINT applied_promotion_drawdowns_amount_check;
ALTER TABLE applied_promotion_drawdowns
    ADD CONSTRAINT applied_promotion_drawdowns_amount_check CHECK ((reverses IS NULL) = (amount > 0));
