-- Reservations (credit control): holds on a customer's allowance and balances. A hold
-- is never written into usage totals or balances; deciding usage adds the open holds
-- (state OPEN and not past expires_at) to what it reads, so ending a hold is only a
-- change of state.
CREATE TABLE usage_reservations (
    org_id             uuid NOT NULL REFERENCES organizations (id),
    id                 uuid NOT NULL,
    request_id         text NOT NULL,
    customer_id        uuid NOT NULL,
    product_id         uuid NOT NULL,
    credit_type        text NOT NULL,
    group_values       jsonb NOT NULL,
    contract_id        text,
    requested_quantity numeric NOT NULL,
    requested_amount   numeric NOT NULL,
    granted_quantity   numeric NOT NULL,
    granted_amount     numeric NOT NULL,
    state              text NOT NULL
        CHECK (state IN ('OPEN', 'COMMITTED', 'RELEASED', 'EXPIRED', 'DENIED')),
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    settled_at         timestamptz,
    event_id           text,
    -- Identifies the creating request's payload (a repeat must match it).
    fingerprint        bytea NOT NULL,
    -- The first answer (decision and limit checks), packed as usage answers are.
    answer             bytea NOT NULL,
    created_by         uuid,
    updated_by         uuid,
    PRIMARY KEY (org_id, id),
    CONSTRAINT usage_reservations_request_id_key UNIQUE (org_id, request_id),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id),
    FOREIGN KEY (org_id, product_id) REFERENCES products (org_id, id),
    CHECK (granted_quantity >= 0 AND granted_amount >= 0)
);

-- What every usage decision reads: the customer's open holds.
CREATE INDEX usage_reservations_open ON usage_reservations (org_id, customer_id)
    WHERE state = 'OPEN';
-- What the expiry job looks for.
CREATE INDEX usage_reservations_expiring ON usage_reservations (expires_at)
    WHERE state = 'OPEN';

-- The latest expiry among a customer's reservations (never lowered: releasing or
-- committing one may leave it later than needed). The statement that locks customers
-- for a usage decision reads it, so a customer with no hold costs no statement to look
-- for holds. It lives on the locked row because that row is re-read at its latest
-- version when the lock was waited for, which a subquery in the same statement is not.
ALTER TABLE customers ADD COLUMN holds_until timestamptz;

-- A customer's row changes for its holds without being edited: only the columns a
-- caller edits say who last changed it.
DROP TRIGGER written_by ON customers;
CREATE TRIGGER written_by BEFORE INSERT OR UPDATE OF external_id, name, time_zone, version, updated_at
    ON customers FOR EACH ROW EXECUTE FUNCTION billing_written_by();

-- Each extension of a reservation, kept for its request id's replay.
CREATE TABLE reservation_extensions (
    org_id         uuid NOT NULL REFERENCES organizations (id),
    request_id     text NOT NULL,
    reservation_id uuid NOT NULL,
    fingerprint    bytea NOT NULL,
    answer         bytea NOT NULL,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (org_id, request_id),
    FOREIGN KEY (org_id, reservation_id) REFERENCES usage_reservations (org_id, id)
);

CREATE TRIGGER written_by BEFORE INSERT OR UPDATE ON usage_reservations
    FOR EACH ROW EXECUTE FUNCTION billing_written_by();

ALTER TABLE usage_reservations ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_reservations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_reservations
    USING (org_id = (SELECT billing_current_org())) WITH CHECK (org_id = (SELECT billing_current_org()));
GRANT SELECT, INSERT, UPDATE ON usage_reservations TO billing_app;

ALTER TABLE reservation_extensions ENABLE ROW LEVEL SECURITY;
ALTER TABLE reservation_extensions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reservation_extensions
    USING (org_id = (SELECT billing_current_org())) WITH CHECK (org_id = (SELECT billing_current_org()));
GRANT SELECT, INSERT ON reservation_extensions TO billing_app;

-- Open reservations past their expiry, earliest first: work for the expiry job, which
-- then expires them in each organization's own transaction.
CREATE FUNCTION billing_due_reservations(due_at timestamptz, max_rows bigint)
    RETURNS TABLE (org_id uuid, id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT r.org_id, r.id FROM usage_reservations r
        WHERE r.state = 'OPEN' AND r.expires_at <= due_at
        ORDER BY r.expires_at
        LIMIT max_rows
    $$;
REVOKE ALL ON FUNCTION billing_due_reservations(timestamptz, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION billing_due_reservations(timestamptz, bigint) TO billing_app;
