UPDATE commit_segments s SET remaining = v.remaining
FROM unnest($2::uuid[], $3::int4[], $4::numeric[]) AS v(commit_id, idx, remaining)
WHERE s.org_id = $1 AND s.commit_id = v.commit_id AND s.idx = v.idx
