-- A commitment's end may extend the access of the customer's prepaid commits; the
-- ledger keeps a note of it (no amount).
ALTER TABLE commit_ledger DROP CONSTRAINT commit_ledger_kind_check;
ALTER TABLE commit_ledger ADD CONSTRAINT commit_ledger_kind_check
    CHECK (kind IN ('GRANT', 'DRAWDOWN', 'EXPIRY', 'ADJUSTMENT', 'TRUE_UP', 'VOID', 'ACCESS_EXTENDED'));
