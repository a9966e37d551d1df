ALTER TABLE customers DROP COLUMN balance_alerts;
ALTER TABLE usage_alerts DROP COLUMN raised_at;
DROP TABLE balance_alerts;
