ALTER TABLE commit_ledger RENAME TO commit_ledger_by_month;
ALTER INDEX commit_ledger_pkey RENAME TO commit_ledger_by_month_pkey;
ALTER INDEX commit_ledger_order_idx RENAME TO commit_ledger_by_month_order_idx;
CREATE TABLE commit_ledger (
    LIKE commit_ledger_by_month INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, commit_id, segment_idx) REFERENCES commit_segments (org_id, commit_id, idx)
);
CREATE INDEX commit_ledger_order_idx ON commit_ledger (org_id, commit_id, effective_at, id);
CREATE UNIQUE INDEX commit_ledger_request_idx ON commit_ledger (org_id, request_id) WHERE request_id IS NOT NULL;
INSERT INTO commit_ledger SELECT * FROM commit_ledger_by_month;
DROP TABLE commit_ledger_by_month;
DROP TABLE commit_ledger_requests;
ALTER TABLE commit_ledger ENABLE ROW LEVEL SECURITY;
ALTER TABLE commit_ledger FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON commit_ledger
    USING (org_id = (SELECT billing_current_org())) WITH CHECK (org_id = (SELECT billing_current_org()));
GRANT SELECT, INSERT, UPDATE, DELETE ON commit_ledger TO billing_app;
