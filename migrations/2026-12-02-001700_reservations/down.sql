DROP FUNCTION billing_due_reservations(timestamptz, bigint);
DROP TABLE reservation_extensions;
DROP TABLE usage_reservations;
