-- What drawing applied promotions writes, in one round trip: each part does nothing when
-- its arrays are empty, so one prepared statement serves every writer.
--   uses, each a distinct (application, cycle), added to their cycles (created at their
--     first use) and to their applications' totals: $2 applied ids, $3 cycle starts,
--     $4 amounts
--   drawdowns: $5..$13 (id, application, cycle start, amount, effective at, source,
--     product, created at, reversed drawdown or NULL)
-- The applications' rows are locked by the update (their customers' locks are held):
-- the drawdowns' foreign key check in the same statement finds them locked by itself.
WITH cycles AS (
    INSERT INTO applied_promotion_cycles (org_id, applied_id, cycle_start, used)
    SELECT $1, v.applied_id, v.cycle_start, v.used
    FROM unnest($2::uuid[], $3::timestamptz[], $4::numeric[]) AS v(applied_id, cycle_start, used)
    ON CONFLICT (org_id, applied_id, cycle_start)
    DO UPDATE SET used = applied_promotion_cycles.used + excluded.used
), totals AS (
    UPDATE applied_promotions p SET total_used = p.total_used + v.used
    FROM (SELECT applied_id, sum(used) AS used
          FROM unnest($2::uuid[], $4::numeric[]) AS u(applied_id, used) GROUP BY applied_id) AS v
    WHERE p.org_id = $1 AND p.id = v.applied_id
)
INSERT INTO applied_promotion_drawdowns (org_id, id, applied_id, cycle_start, amount, effective_at,
   source_id, product_id, created_at, reverses)
SELECT $1, * FROM unnest($5::uuid[], $6::uuid[], $7::timestamptz[], $8::numeric[], $9::timestamptz[],
   $10::uuid[], $11::uuid[], $12::timestamptz[], $13::uuid[])
