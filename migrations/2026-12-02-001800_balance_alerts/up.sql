-- Balance alerts: a threshold on what a customer can still draw in one credit type,
-- OK or in alarm, with when that last changed. BALANCE_LOW and BALANCE_RECOVERED go to
-- the violation feed in the transaction that moves the state.
CREATE TABLE balance_alerts (
    org_id            uuid NOT NULL REFERENCES organizations (id),
    id                uuid NOT NULL,
    customer_id       uuid NOT NULL,
    credit_type       text NOT NULL,
    threshold_kind    text NOT NULL CHECK (threshold_kind IN ('ABSOLUTE', 'PERCENT')),
    threshold         numeric NOT NULL CHECK (threshold > 0),
    state             text NOT NULL CHECK (state IN ('OK', 'ALARM')),
    state_changed_at  timestamptz NOT NULL,
    available         numeric NOT NULL,
    created_at        timestamptz NOT NULL,
    created_by        uuid,
    updated_by        uuid,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id)
);
CREATE INDEX balance_alerts_customer ON balance_alerts (org_id, customer_id);

-- How many balance alerts the customer has, kept with the alerts under the customer's
-- lock: the usage path reads it from the row it locks (see holds_until) and judges
-- alerts only for customers that have some.
ALTER TABLE customers ADD COLUMN balance_alerts integer NOT NULL DEFAULT 0
    CHECK (balance_alerts >= 0);

CREATE TRIGGER written_by BEFORE INSERT OR UPDATE ON balance_alerts
    FOR EACH ROW EXECUTE FUNCTION billing_written_by();

ALTER TABLE balance_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE balance_alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON balance_alerts
    USING (org_id = (SELECT billing_current_org())) WITH CHECK (org_id = (SELECT billing_current_org()));
GRANT SELECT, INSERT, UPDATE, DELETE ON balance_alerts TO billing_app;

-- When a limit's warning threshold was last crossed in its window, so its alert state
-- says since when it is in alarm (NULL for crossings recorded before this column).
ALTER TABLE usage_alerts ADD COLUMN raised_at timestamptz;
