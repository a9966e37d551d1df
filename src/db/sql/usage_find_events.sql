SELECT e.event_id, e.fingerprint, e.outcome_packed, e.outcome
FROM unnest($2::text[]) AS wanted(event_id)
CROSS JOIN LATERAL (SELECT k.customer_id, k.id, k.recorded_at FROM usage_event_keys k
   WHERE k.org_id = $1 AND k.event_id = wanted.event_id OFFSET 0) k
CROSS JOIN LATERAL (SELECT e.event_id, e.fingerprint, e.outcome_packed, e.outcome FROM usage_events e
   WHERE e.org_id = $1 AND e.customer_id = k.customer_id AND e.id = k.id
   AND e.recorded_at = k.recorded_at OFFSET 0) e
