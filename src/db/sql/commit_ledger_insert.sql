WITH written AS (INSERT INTO commit_ledger (org_id, id, commit_id, segment_idx, kind, amount,
   effective_at, source_id, product_id, reason, created_at, request_id, request_hash)
SELECT $1, *, $12, $13 FROM unnest($2::uuid[], $3::uuid[], $4::int4[], $5::text[],
   $6::numeric[], $7::timestamptz[], $8::uuid[], $9::uuid[], $10::text[], $11::timestamptz[])
RETURNING id, effective_at)
INSERT INTO commit_ledger_requests (org_id, request_id, entry_id, effective_at)
SELECT $1, $12, id, effective_at FROM written WHERE $12::text IS NOT NULL
