DROP TRIGGER limits_truncated ON allowance_limits;
DROP FUNCTION billing_limits_truncated();
DROP TRIGGER limits_changed ON allowance_limits;
DROP FUNCTION billing_limits_changed();
ALTER TABLE customers DROP COLUMN limits_version;
