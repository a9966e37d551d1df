DROP FUNCTION billing_due_reservations(timestamptz, bigint);
DROP TABLE reservation_extensions;
DROP TABLE usage_reservations;
DROP TRIGGER written_by ON customers;
CREATE TRIGGER written_by BEFORE INSERT OR UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION billing_written_by();
ALTER TABLE customers DROP COLUMN holds_until;
