UPDATE applied_promotion_cycles c SET used = c.used - v.used
FROM unnest($2::uuid[], $3::timestamptz[], $4::numeric[]) AS v(applied_id, cycle_start, used)
WHERE c.org_id = $1 AND c.applied_id = v.applied_id AND c.cycle_start = v.cycle_start
