-- A usage transaction's first statement: the customers $2 of org $1, locked in the
-- order of $2 (the caller sorts it by id: the order every balance-changing transaction
-- locks them in), one index probe each as `db::usage` explains, each with what says
-- which further reads its usage needs; and, in the same round trip, the dedupe keys of
-- the stored events among the ids $3 (replays), each naming its event's row and month.
-- A customer's row has the key's columns NULL, a key's row has `customer_id` NULL.
-- CheckUsage runs it without the lock (`db::usage_start`). The events of the keys found,
-- rare (a replay), are read by `usage_stored_events.sql`.
--
-- Only the key table, not `usage_events`: PostgreSQL locks and starts a scan on every
-- partition a generic plan names, whatever a run prunes, and a join on a month known
-- per row names all of them. With a year of history (17 months) the statement cost 0.16
-- ms per transaction at 8 clients against 0.12 ms keys only (docs/performance.md), a
-- cost that grew with every month kept; keys only it is the same with 5 months or 17.
--
-- The keys are read with the statement's snapshot, taken before any wait for a lock:
-- an event stored meanwhile by the transaction that held one of these customers is not
-- seen, so the usage transaction decides it again and its write fails on
-- usage_event_keys_pkey, which is retried (the retry reads the event and answers its
-- replay). No event is ever stored or drawn twice; the race only costs a retry, as an
-- event id sent for two customers at once already did.
--
-- Each customer is one probe of the primary key. `external_id IS NOT NULL` is always
-- true (the column is NOT NULL) and is there for the planner: on a table analyzed empty,
-- the two equalities alone tie the primary key with the external-id index, and the plan
-- kept for the connection probed that index by org alone, reading every customer of the
-- org for each one asked (`tests/it/plans.rs`). A row range `(org_id, id)` instead
-- served the primary key there but, with real statistics, was estimated as a range:
-- the benchmark's batches ran at a third of their speed.
WITH locked AS MATERIALIZED (
    SELECT c.* FROM unnest($2::uuid[]) AS asked(id)
    CROSS JOIN LATERAL (SELECT id, time_zone, holds_until, balance_alerts, promotions_applied,
       limits_version
       FROM customers WHERE org_id = $1 AND id = asked.id AND external_id IS NOT NULL
       FOR NO KEY UPDATE) c
)
SELECT id AS customer_id, time_zone, holds_until, balance_alerts, promotions_applied,
       limits_version, NULL::uuid AS event_customer_id, NULL::uuid AS event_row_id,
       NULL::timestamptz AS event_recorded_at
FROM locked
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, k.customer_id, k.id, k.recorded_at
FROM unnest($3::text[]) AS wanted(event_id)
CROSS JOIN LATERAL (SELECT k.customer_id, k.id, k.recorded_at FROM usage_event_keys k
   WHERE k.org_id = $1 AND k.event_id = wanted.event_id OFFSET 0) k
