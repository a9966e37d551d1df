DELETE FROM commit_ledger WHERE kind = 'ACCESS_EXTENDED';
ALTER TABLE commit_ledger DROP CONSTRAINT commit_ledger_kind_check;
ALTER TABLE commit_ledger ADD CONSTRAINT commit_ledger_kind_check
    CHECK (kind IN ('GRANT', 'DRAWDOWN', 'EXPIRY', 'ADJUSTMENT', 'TRUE_UP', 'VOID'));
