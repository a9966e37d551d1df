-- The products of org $1 among the ids $2 and the codes $3, in one round trip; a product
-- named both ways comes back twice. Plain `= ANY`, like the catalog's other reads: a
-- lateral probe per key (as `db::usage::KEY_LOOKUPS` do) does not help here, since on a
-- table analyzed empty the planner ties the primary key with the code index and probes
-- ids through the latter all the same; autovacuum analyzes products again after their
-- first 50 rows.
SELECT id, code, name, tags, service_type, service_family, kind, version, created_at, updated_at,
       created_by, updated_by
FROM products WHERE org_id = $1 AND id = ANY($2)
UNION ALL
SELECT id, code, name, tags, service_type, service_family, kind, version, created_at, updated_at,
       created_by, updated_by
FROM products WHERE org_id = $1 AND code = ANY($3)
