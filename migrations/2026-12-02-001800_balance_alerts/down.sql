ALTER TABLE usage_alerts DROP COLUMN raised_at;
DROP TABLE balance_alerts;
