-- Every resource says which API key created it and which last changed it. The service
-- sets the calling key as `app.key_id` in each transaction it runs for a call; these
-- triggers record it, so every write path does so without repeating it. Work the
-- service does on its own (jobs, shared usage transactions) sets no key: it leaves
-- `updated_by` as it was, so the column names the last key that changed the resource.

-- The key of the current transaction, or NULL.
CREATE FUNCTION billing_current_key() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.key_id', true), '')::uuid $$;

CREATE FUNCTION billing_written_by() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            NEW.created_by := COALESCE(NEW.created_by, billing_current_key());
            NEW.updated_by := NEW.created_by;
        ELSE
            NEW.created_by := OLD.created_by;
            NEW.updated_by := COALESCE(billing_current_key(), OLD.updated_by);
        END IF;
        RETURN NEW;
    END
    $$;

ALTER TABLE customers ADD COLUMN created_by uuid, ADD COLUMN updated_by uuid;
ALTER TABLE products ADD COLUMN created_by uuid, ADD COLUMN updated_by uuid;
ALTER TABLE commits ADD COLUMN created_by uuid, ADD COLUMN updated_by uuid;
ALTER TABLE commitments ADD COLUMN created_by uuid, ADD COLUMN updated_by uuid;
ALTER TABLE allowance_limits ADD COLUMN created_by uuid, ADD COLUMN updated_by uuid;
ALTER TABLE credit_promotions ADD COLUMN created_by uuid, ADD COLUMN updated_by uuid;
ALTER TABLE applied_promotions ADD COLUMN created_by uuid, ADD COLUMN updated_by uuid;
ALTER TABLE billing_promos ADD COLUMN updated_by uuid;

CREATE TRIGGER written_by BEFORE INSERT OR UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION billing_written_by();
CREATE TRIGGER written_by BEFORE INSERT OR UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION billing_written_by();
CREATE TRIGGER written_by BEFORE INSERT OR UPDATE ON commits
    FOR EACH ROW EXECUTE FUNCTION billing_written_by();
CREATE TRIGGER written_by BEFORE INSERT OR UPDATE ON commitments
    FOR EACH ROW EXECUTE FUNCTION billing_written_by();
CREATE TRIGGER written_by BEFORE INSERT OR UPDATE ON allowance_limits
    FOR EACH ROW EXECUTE FUNCTION billing_written_by();
CREATE TRIGGER written_by BEFORE INSERT OR UPDATE ON credit_promotions
    FOR EACH ROW EXECUTE FUNCTION billing_written_by();
CREATE TRIGGER written_by BEFORE INSERT OR UPDATE ON billing_promos
    FOR EACH ROW EXECUTE FUNCTION billing_written_by();
-- Usage draws applied promotions down (total_used) on the hot path: that is not a
-- change of the resource, and skips the trigger.
CREATE TRIGGER written_by BEFORE INSERT OR UPDATE OF priority, starts_at, ends_at, commitment_id, removed_at
    ON applied_promotions FOR EACH ROW EXECUTE FUNCTION billing_written_by();
