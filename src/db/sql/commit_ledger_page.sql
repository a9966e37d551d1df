SELECT * FROM (
   SELECT id, commit_id, segment_idx, kind, amount, effective_at, source_id, product_id, reason, created_at,
          SUM(amount) OVER (ORDER BY effective_at, id) AS running_balance
   FROM commit_ledger WHERE org_id = $1 AND commit_id = $2
) entries
WHERE ($3::text IS NULL OR kind = $3)
  AND ($4::timestamptz IS NULL OR (effective_at, id) > ($4, $5))
ORDER BY effective_at, id LIMIT $6
