-- The open segments of some customers that can take usage dated in [$4, $5], each with
-- what its commit says about drawing from it (priority, credit type, what it applies to)
-- and the ledger entries that take effect after $6 (in effective-time, then id, order):
-- what a drawdown decision at or after $6 needs to know what each segment held then.
-- A segment whose latest entry (`ledger_last_at`, kept by a trigger on the ledger) is
-- not after $6 has none to read, and the gate skips its probe of every month's index.
-- Both OFFSET 0 keep the planner from moving the gate: pulled up it became a join
-- filter applied after the probes, pushed down one filter per month's scan.
-- One round trip; FOR UPDATE (appended when locking) locks the segment rows only.
SELECT s.customer_id, s.commit_id, s.idx, s.starting_at, s.ending_before, s.amount, s.remaining,
       COALESCE(l.ats, '{}') AS later_at, COALESCE(l.amounts, '{}') AS later_amount,
       c.priority, c.credit_type, c.applicable_product_ids, c.applicable_product_tags,
       c.applicable_contract_ids, c.specifiers
FROM commit_segments s
JOIN commits c ON c.org_id = s.org_id AND c.id = s.commit_id
LEFT JOIN LATERAL (
    SELECT a.ats, a.amounts FROM (
        SELECT array_agg(e.effective_at ORDER BY e.effective_at, e.id) AS ats,
               array_agg(e.amount ORDER BY e.effective_at, e.id) AS amounts
        FROM commit_ledger e
        WHERE e.org_id = s.org_id AND e.commit_id = s.commit_id AND e.segment_idx = s.idx
          AND e.effective_at > $6
        OFFSET 0
    ) a
    WHERE s.ledger_last_at > $6
    OFFSET 0
) l ON true
WHERE s.org_id = $1
  AND s.customer_id = ANY($2)
  AND s.closed_at IS NULL
  AND s.starting_at <= $5
  AND s.ending_before > $3
ORDER BY s.commit_id, s.idx
