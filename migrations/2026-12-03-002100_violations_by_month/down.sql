DROP FUNCTION billing_create_months_from(text, timestamptz);
DROP FUNCTION billing_drop_expired_violations(timestamptz);
DROP FUNCTION billing_create_partitions_ahead(text, int);
DROP FUNCTION billing_create_month_partition(text, date);
ALTER TABLE violations RENAME TO violations_by_month;
ALTER INDEX violations_pkey RENAME TO violations_by_month_pkey;
ALTER INDEX violations_customer_idx RENAME TO violations_by_month_customer_idx;
CREATE TABLE violations (
    LIKE violations_by_month INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (org_id, seq)
);
CREATE INDEX violations_customer_idx ON violations (org_id, customer_id, seq);
INSERT INTO violations SELECT * FROM violations_by_month;
DROP TABLE violations_by_month;
ALTER TABLE violations ENABLE ROW LEVEL SECURITY;
ALTER TABLE violations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON violations
    USING (org_id = (SELECT billing_current_org())) WITH CHECK (org_id = (SELECT billing_current_org()));
GRANT SELECT, INSERT, UPDATE, DELETE ON violations TO billing_app;
