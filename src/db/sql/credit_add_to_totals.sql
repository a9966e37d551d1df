UPDATE applied_promotions p SET total_used = p.total_used + v.used
FROM (SELECT applied_id, sum(used) AS used
      FROM unnest($2::uuid[], $3::numeric[]) AS u(applied_id, used) GROUP BY applied_id) AS v
WHERE p.org_id = $1 AND p.id = v.applied_id
