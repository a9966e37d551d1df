-- What deciding a batch of usage reads once its customers are locked, in one round trip
-- (a statement begun after the locks sees everything their last holders wrote):
--   $1 the org; $2 the batch's customers; $3, $4, $5 the windows wanted (customer, kind,
--   first day); $6 product ids and $7 product codes; $8 event ids.
-- One row of arrays of records, one array per kind of row:
--   limits    the limit settings of the customers that have limits;
--   totals    the product totals in the windows;
--   alerts    the alert levels notified in the windows;
--   products  the products named by id or code (one named both ways comes twice) and
--             those of the totals;
--   events    the stored events among the ids.
-- Lookups by key are the lateral probes of `usage.rs` (one index probe per key whatever
-- the statistics say), limits' included. Products are read with plain `= ANY`, like the
-- catalog's other reads: a lateral probe per key does not help them, since on a
-- table analyzed empty the planner ties the primary key with the code index and probes
-- ids through the latter all the same; autovacuum analyzes products again after their
-- first 50 rows.
WITH w AS MATERIALIZED (
    SELECT * FROM unnest($3::uuid[], $4::text[], $5::date[]) AS w(customer_id, window_kind, first_day)
), t AS MATERIALIZED (
    SELECT t.customer_id, t.window_kind, t.first_day, t.product_id, t.credit_type, t.amount, t.quantity
    FROM w CROSS JOIN LATERAL (SELECT * FROM usage_totals t WHERE t.org_id = $1 AND t.customer_id = w.customer_id
       AND t.window_kind = w.window_kind AND t.first_day = w.first_day OFFSET 0) t
)
SELECT
    ARRAY(SELECT ROW(l.customer_id, l.max_amount_per_transaction, l.max_amount_per_day, l.max_amount_per_month,
                     l.max_usage_per_transaction, l.max_usage_per_day, l.max_usage_per_month,
                     l.tolerance_percent, l.block_not_included, l.soft, l.warning_thresholds,
                     l.service_allowances, l.currency)
          FROM unnest($2::uuid[]) AS c(customer_id)
          CROSS JOIN LATERAL (SELECT * FROM allowance_limits l WHERE l.org_id = $1
             AND l.customer_id = c.customer_id OFFSET 0) l) AS limits,
    ARRAY(SELECT ROW(t.customer_id, t.window_kind, t.first_day, t.product_id, t.credit_type, t.amount, t.quantity)
          FROM t) AS totals,
    ARRAY(SELECT ROW(a.customer_id, a.window_kind, a.first_day, a.scope, a.measure, a.percent)
          FROM w CROSS JOIN LATERAL (SELECT * FROM usage_alerts a WHERE a.org_id = $1
             AND a.customer_id = w.customer_id AND a.window_kind = w.window_kind
             AND a.first_day = w.first_day OFFSET 0) a) AS alerts,
    ARRAY(SELECT ROW(p.id, p.code, p.name, p.tags, p.service_type, p.service_family, p.kind, p.version,
                     p.created_at, p.updated_at, p.created_by, p.updated_by)
          FROM products p
          WHERE p.org_id = $1 AND p.id = ANY($6::uuid[] || ARRAY(SELECT t.product_id FROM t))
          UNION ALL
          SELECT ROW(p.id, p.code, p.name, p.tags, p.service_type, p.service_family, p.kind, p.version,
                     p.created_at, p.updated_at, p.created_by, p.updated_by)
          FROM products p WHERE p.org_id = $1 AND p.code = ANY($7::text[])) AS products,
    ARRAY(SELECT ROW(e.event_id, e.fingerprint, e.outcome_packed, e.outcome)
          FROM unnest($8::text[]) AS wanted(event_id)
          CROSS JOIN LATERAL (SELECT k.customer_id, k.id, k.recorded_at FROM usage_event_keys k
             WHERE k.org_id = $1 AND k.event_id = wanted.event_id OFFSET 0) k
          CROSS JOIN LATERAL (SELECT e.event_id, e.fingerprint, e.outcome_packed, e.outcome FROM usage_events e
             WHERE e.org_id = $1 AND e.customer_id = k.customer_id AND e.id = k.id
             AND e.recorded_at = k.recorded_at OFFSET 0) e) AS events
