-- What a transaction writes to usage totals, segment balances, the ledger and usage
-- events, in one round trip: each part does nothing when its arrays are empty, so one
-- prepared statement serves every caller (a usage transaction sends all four at once).
--   totals added to, per (customer, window kind, first day, product, credit type): $2..$8
--   segments' new remaining balances, per (commit, index): $9..$11, with the latest
--     effective time among the ledger entries below for the segment ($37, or NULL): the
--     ledger's trigger would otherwise update the row again to move `ledger_last_at`
--   ledger entries: $12..$21, with the request key $22 (id), $23 (fingerprint) or NULL;
--     a request id is made unique by its own table (the entries' unique keys carry their
--     month), which names the entry it wrote, so a reused id fails on its primary key
--   usage events with their dedupe keys: $24..$35, recorded at $36; an event id already
--     stored fails on usage_event_keys_pkey
WITH totals AS (
    INSERT INTO usage_totals
       (org_id, customer_id, window_kind, first_day, product_id, credit_type, amount, quantity)
    SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::date[], $5::uuid[], $6::text[],
       $7::numeric[], $8::numeric[])
    ON CONFLICT (org_id, customer_id, window_kind, first_day, product_id, credit_type) DO UPDATE
    SET amount = usage_totals.amount + EXCLUDED.amount, quantity = usage_totals.quantity + EXCLUDED.quantity
), segments AS (
    UPDATE commit_segments s SET remaining = v.remaining, ledger_last_at = GREATEST(s.ledger_last_at, v.last_at)
    FROM unnest($9::uuid[], $10::int4[], $11::numeric[], $37::timestamptz[]) AS v(commit_id, idx, remaining, last_at)
    WHERE s.org_id = $1 AND s.commit_id = v.commit_id AND s.idx = v.idx
), ledger AS (
    INSERT INTO commit_ledger (org_id, id, commit_id, segment_idx, kind, amount,
       effective_at, source_id, product_id, reason, created_at, request_id, request_hash)
    SELECT $1, *, $22::text, $23::bytea FROM unnest($12::uuid[], $13::uuid[], $14::int4[], $15::text[],
       $16::numeric[], $17::timestamptz[], $18::uuid[], $19::uuid[], $20::text[], $21::timestamptz[])
    RETURNING id, effective_at
), requests AS (
    INSERT INTO commit_ledger_requests (org_id, request_id, entry_id, effective_at)
    SELECT $1, $22::text, id, effective_at FROM ledger WHERE $22::text IS NOT NULL
), events AS (
    SELECT * FROM unnest($24::text[], $25::uuid[], $26::uuid[], $27::uuid[], $28::numeric[],
       $29::numeric[], $30::text[], $31::timestamptz[], $32::text[], $33::text[], $34::bytea[],
       $35::bytea[]) AS e(event_id, id, customer_id, product_id, quantity, amount, credit_type,
       occurred_at, contract_id, decision, fingerprint, outcome_packed)
), event_keys AS (
    INSERT INTO usage_event_keys (org_id, event_id, customer_id, id, recorded_at)
    SELECT $1, event_id, customer_id, id, $36::timestamptz FROM events
)
INSERT INTO usage_events (org_id, event_id, id, customer_id, product_id, quantity, amount,
   credit_type, occurred_at, contract_id, decision, fingerprint, outcome_packed, recorded_at)
SELECT $1, event_id, id, customer_id, product_id, quantity, amount, credit_type, occurred_at,
   contract_id, decision, fingerprint, outcome_packed, $36::timestamptz
FROM events
