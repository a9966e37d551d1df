DROP TRIGGER segments_ledger_last_at_updated ON commit_ledger;
DROP TRIGGER segments_ledger_last_at ON commit_ledger;
DROP FUNCTION billing_segments_ledger_last_at();
ALTER TABLE commit_segments DROP COLUMN ledger_last_at;
