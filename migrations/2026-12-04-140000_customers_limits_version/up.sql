-- Every instance caches customers' allowance limits for the usage path, each entry under
-- the customer's `limits_version`. The usage transaction reads that version from the
-- customer row it locks (the lock returns the row's latest version), so a cached entry is
-- used only when it is what the database holds: exact, with no notice to wait for.
-- Customers that never had limits (version 0) cost no read at all.
--
-- The version moves with every write to a customer's limits, by whatever writer (the
-- service, or an operator in psql): this trigger (and a truncation is refused). The service's limit writes hold the
-- customer's lock already, so the update here waits for no one; like the other counters
-- of the usage path it names no writer (`written_by` on customers watches the
-- customer's own columns only, since the reservations migration).
ALTER TABLE customers ADD COLUMN limits_version bigint NOT NULL DEFAULT 0
    CHECK (limits_version >= 0);

UPDATE customers c SET limits_version = 1
    FROM allowance_limits l
    WHERE l.org_id = c.org_id AND l.customer_id = c.id;

CREATE FUNCTION billing_limits_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE customers SET limits_version = limits_version + 1
            WHERE org_id = OLD.org_id AND id = OLD.customer_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE'
            AND (NEW.org_id, NEW.customer_id) IS DISTINCT FROM (OLD.org_id, OLD.customer_id)) THEN
        UPDATE customers SET limits_version = limits_version + 1
            WHERE org_id = NEW.org_id AND id = NEW.customer_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER limits_changed AFTER INSERT OR UPDATE OR DELETE ON allowance_limits
    FOR EACH ROW EXECUTE FUNCTION billing_limits_changed();

-- A truncation names no rows, so it could not move the versions but by updating every
-- organization's customers at once (a statement no shard could serve alone, docs/scaling.md):
-- it is refused instead; `DELETE FROM allowance_limits` removes them all and moves each.
CREATE FUNCTION billing_limits_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'allowance_limits cannot be truncated: instances cache limits by the version a write moves; use DELETE';
END
$$;

CREATE TRIGGER limits_truncated BEFORE TRUNCATE ON allowance_limits
    FOR EACH STATEMENT EXECUTE FUNCTION billing_limits_truncated();
