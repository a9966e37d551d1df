SELECT SUM(amount) AS total FROM commit_ledger
WHERE org_id = $1 AND commit_id = $2 AND (effective_at, id) <= ($3, $4)
