SELECT l.commit_id, l.segment_idx, l.effective_at, l.amount
FROM unnest($2::uuid[], $3::int4[]) AS s(commit_id, idx)
JOIN commit_ledger l ON l.org_id = $1 AND l.commit_id = s.commit_id
     AND l.segment_idx = s.idx AND l.effective_at > $4
ORDER BY l.effective_at, l.id
