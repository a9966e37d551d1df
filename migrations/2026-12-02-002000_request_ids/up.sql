-- Request ids (AIP-155) of the calls that create or move something: a retry with the
-- same id and payload gets what the first call made; with another payload it is
-- ALREADY_EXISTS. One row per call that ran, written in the call's own transaction, so
-- a call either ran and is remembered, or did not run.
CREATE TABLE request_ids (
    org_id      uuid NOT NULL REFERENCES organizations (id),
    -- The RPC, e.g. "CreateCustomer": one id may be used once per operation.
    operation   text NOT NULL,
    request_id  text NOT NULL,
    -- SHA-256 of the request without its request id.
    fingerprint bytea NOT NULL,
    -- The id (or code) of what the first call created or changed.
    resource    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, operation, request_id)
);

ALTER TABLE request_ids ENABLE ROW LEVEL SECURITY;
ALTER TABLE request_ids FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON request_ids
    USING (org_id = (SELECT billing_current_org())) WITH CHECK (org_id = (SELECT billing_current_org()));
GRANT SELECT, INSERT ON request_ids TO billing_app;
