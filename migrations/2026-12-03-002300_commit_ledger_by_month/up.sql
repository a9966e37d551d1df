-- The commit ledger is append-only and grows with usage (drawdowns): partitioned by
-- month of effective_at. Not by recording time: the usage path reads each open
-- segment's entries effective after the event's time, and by effective time that read
-- touches only the months from then on (the default partition holds the rest: grants of
-- segments starting beyond the months made, until their month is made and they move).
-- Entries have no retention (they are the financial record); partitions serve size.
--
-- The request-id unique index cannot span months, so request ids of adjustments move to
-- commit_ledger_requests: unique by (org_id, request_id), written by the statement that
-- writes the entry, and naming the entry and its month.
CREATE TABLE commit_ledger_requests (
    org_id       uuid NOT NULL,
    request_id   text NOT NULL,
    entry_id     uuid NOT NULL,
    -- The entry's effective_at: its partition.
    effective_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, request_id)
);

ALTER TABLE commit_ledger RENAME TO commit_ledger_unpartitioned;
ALTER INDEX commit_ledger_pkey RENAME TO commit_ledger_unpartitioned_pkey;
ALTER INDEX commit_ledger_order_idx RENAME TO commit_ledger_unpartitioned_order_idx;

CREATE TABLE commit_ledger (
    LIKE commit_ledger_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (org_id, id, effective_at),
    FOREIGN KEY (org_id, commit_id, segment_idx) REFERENCES commit_segments (org_id, commit_id, idx)
) PARTITION BY RANGE (effective_at);
CREATE INDEX commit_ledger_order_idx ON commit_ledger (org_id, commit_id, effective_at, id);
CREATE TABLE commit_ledger_default PARTITION OF commit_ledger DEFAULT;

-- Months from the earliest entry to three ahead (entries further ahead wait in the
-- default partition for their month); then the entries and request ids move over.
SELECT billing_create_months_from('commit_ledger', (SELECT min(effective_at) FROM commit_ledger_unpartitioned));
INSERT INTO commit_ledger SELECT * FROM commit_ledger_unpartitioned;
INSERT INTO commit_ledger_requests (org_id, request_id, entry_id, effective_at)
    SELECT org_id, request_id, id, effective_at FROM commit_ledger_unpartitioned WHERE request_id IS NOT NULL;
DROP TABLE commit_ledger_unpartitioned;

ALTER TABLE commit_ledger ENABLE ROW LEVEL SECURITY;
ALTER TABLE commit_ledger FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON commit_ledger
    USING (org_id = (SELECT billing_current_org())) WITH CHECK (org_id = (SELECT billing_current_org()));
-- Entries are appended, never changed.
GRANT SELECT, INSERT ON commit_ledger TO billing_app;

ALTER TABLE commit_ledger_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE commit_ledger_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON commit_ledger_requests
    USING (org_id = (SELECT billing_current_org())) WITH CHECK (org_id = (SELECT billing_current_org()));
GRANT SELECT, INSERT ON commit_ledger_requests TO billing_app;
