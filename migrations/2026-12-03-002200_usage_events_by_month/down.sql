ALTER TABLE usage_events RENAME TO usage_events_by_month;
ALTER INDEX usage_events_pkey RENAME TO usage_events_by_month_pkey;
ALTER INDEX usage_events_customer_time_idx RENAME TO usage_events_by_month_customer_time_idx;
CREATE TABLE usage_events (
    LIKE usage_events_by_month INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (org_id, event_id)
);
CREATE INDEX usage_events_customer_id_idx ON usage_events (org_id, customer_id, id);
CREATE INDEX usage_events_customer_time_idx ON usage_events (org_id, customer_id, occurred_at)
    WHERE decision <> 'BLOCKED' AND voided_at IS NULL;
INSERT INTO usage_events SELECT * FROM usage_events_by_month;
DROP TABLE usage_events_by_month;
DROP TABLE usage_event_keys;
ALTER TABLE usage_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_events
    USING (org_id = (SELECT billing_current_org())) WITH CHECK (org_id = (SELECT billing_current_org()));
GRANT SELECT, INSERT, UPDATE, DELETE ON usage_events TO billing_app;
