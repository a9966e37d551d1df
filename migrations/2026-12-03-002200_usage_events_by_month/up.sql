-- Usage events are the largest table and append-only but for voids: partitioned by month
-- of recorded_at (when the service stored the event, never backdated), so a year of
-- events is twelve tables with their own indexes, each filled once and then only read.
-- Events have no retention (they are the financial record); partitions serve size.
--
-- Event-id dedupe must stay exact across months, but a partition key must be part of
-- every unique key, so the events' own keys cannot say an event id is used once.
-- usage_event_keys does: one narrow row per stored event, unique by (org_id, event_id),
-- written by the same statement as the event, and holding the event's primary key, so a
-- stored event is found in its one partition.
--
-- The events' primary key becomes (org_id, customer_id, id, recorded_at): it takes the
-- place of the (org_id, customer_id, id) index that lists a customer's events, so an
-- event still costs three index entries (the key's, this one, the time index) of which
-- only the key's is at a random place (event ids are the caller's).
CREATE TABLE usage_event_keys (
    org_id      uuid NOT NULL,
    event_id    text NOT NULL,
    -- The stored event's customer_id, id and recorded_at: its primary key and month.
    customer_id uuid NOT NULL,
    id          uuid NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, event_id)
);

ALTER TABLE usage_events RENAME TO usage_events_unpartitioned;
ALTER INDEX usage_events_pkey RENAME TO usage_events_unpartitioned_pkey;
ALTER INDEX usage_events_customer_id_idx RENAME TO usage_events_unpartitioned_customer_id_idx;
ALTER INDEX usage_events_customer_time_idx RENAME TO usage_events_unpartitioned_customer_time_idx;

CREATE TABLE usage_events (
    LIKE usage_events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (org_id, customer_id, id, recorded_at)
) PARTITION BY RANGE (recorded_at);
CREATE INDEX usage_events_customer_time_idx ON usage_events (org_id, customer_id, occurred_at)
    WHERE decision <> 'BLOCKED' AND voided_at IS NULL;
-- Rows of a month not made (a clock far off, a job that did not run) land here rather
-- than failing the call that recorded them.
CREATE TABLE usage_events_default PARTITION OF usage_events DEFAULT;

SELECT billing_create_months_from('usage_events', (SELECT min(recorded_at) FROM usage_events_unpartitioned));
INSERT INTO usage_events SELECT * FROM usage_events_unpartitioned;
INSERT INTO usage_event_keys (org_id, event_id, customer_id, id, recorded_at)
    SELECT org_id, event_id, customer_id, id, recorded_at FROM usage_events_unpartitioned;
DROP TABLE usage_events_unpartitioned;

ALTER TABLE usage_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_events
    USING (org_id = (SELECT billing_current_org())) WITH CHECK (org_id = (SELECT billing_current_org()));
-- Voids update an event; nothing deletes one.
GRANT SELECT, INSERT, UPDATE ON usage_events TO billing_app;

ALTER TABLE usage_event_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_event_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_event_keys
    USING (org_id = (SELECT billing_current_org())) WITH CHECK (org_id = (SELECT billing_current_org()));
GRANT SELECT, INSERT ON usage_event_keys TO billing_app;
