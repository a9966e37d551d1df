INSERT INTO applied_promotion_cycles (org_id, applied_id, cycle_start, used)
SELECT $1, v.applied_id, v.cycle_start, v.used
FROM unnest($2::uuid[], $3::timestamptz[], $4::numeric[]) AS v(applied_id, cycle_start, used)
ON CONFLICT (org_id, applied_id, cycle_start)
DO UPDATE SET used = applied_promotion_cycles.used + excluded.used
