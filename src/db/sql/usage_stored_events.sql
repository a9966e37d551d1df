-- The stored events of org $1 whose dedupe keys the usage transaction's first statement
-- found (`usage_customers_and_event_keys.sql`): each by its primary key, customer $2, id $3
-- and month $4, as the key names it. Run only when a key was found (a replay), so the
-- plan's lock and start of every month of `usage_events` is paid by replays alone.
SELECT e.event_id, e.fingerprint, e.outcome_packed, e.outcome
FROM unnest($2::uuid[], $3::uuid[], $4::timestamptz[]) AS k(customer_id, id, recorded_at)
CROSS JOIN LATERAL (SELECT e.event_id, e.fingerprint, e.outcome_packed, e.outcome FROM usage_events e
   WHERE e.org_id = $1 AND e.customer_id = k.customer_id AND e.id = k.id
   AND e.recorded_at = k.recorded_at OFFSET 0) e
