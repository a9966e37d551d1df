-- Row-level security: the second wall between tenants, behind the org filter every
-- repository query already has.
--
-- The service's pooled connections run as `billing_app` (SET ROLE on connect). That
-- role owns nothing and cannot bypass row security, so every table with an `org_id`
-- shows it only the rows of the organization its transaction set in `app.org_id`; a
-- session that set none sees no rows and can write none. The few reads that must span
-- organizations (resolving an API key, finding due jobs, feed positions) go through
-- the SECURITY DEFINER functions below, which return ids and counters, never tenant
-- data. Those functions run as the migrating role, which owns the tables and must be a
-- superuser or have BYPASSRLS.

DO $$
BEGIN
    CREATE ROLE billing_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
EXCEPTION
    -- Roles are cluster-wide: another database on this cluster may have made it, even
    -- concurrently (then the catalog's unique index reports it).
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The migrating role connects the service and then switches to billing_app.
DO $$
BEGIN
    EXECUTE format('GRANT billing_app TO %I', current_user);
EXCEPTION
    WHEN duplicate_object OR unique_violation OR invalid_grant_operation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO billing_app;
GRANT SELECT ON organizations TO billing_app;

-- The organization of the current transaction, or NULL (which matches no row).
CREATE FUNCTION billing_current_org() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.org_id', true), '')::uuid $$;

DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
        WHERE n.nspname = 'public' AND c.relkind = 'r'
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %s USING (org_id = billing_current_org()) '
            'WITH CHECK (org_id = billing_current_org())', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO billing_app', t);
    END LOOP;
END
$$;

GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO billing_app;

-- Resolves a presented key id to its organization, before any organization is known.
CREATE FUNCTION billing_api_key(key_id uuid)
    RETURNS TABLE (org_id uuid, secret_sha256 bytea, created_at timestamptz, revoked_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT k.org_id, k.secret_sha256, k.created_at, k.revoked_at FROM api_keys k WHERE k.id = key_id $$;

-- Customers with commit segments that ended by `due_at` and are not closed yet.
CREATE FUNCTION billing_due_segments(due_at timestamptz, max_rows bigint)
    RETURNS TABLE (org_id uuid, customer_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT DISTINCT s.org_id, s.customer_id FROM commit_segments s
        WHERE s.closed_at IS NULL AND s.ending_before <= due_at
        LIMIT max_rows
    $$;

-- Commitments whose next check is due by `due_at`, earliest first.
CREATE FUNCTION billing_due_commitments(due_at timestamptz, max_rows bigint)
    RETURNS TABLE (org_id uuid, id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT c.org_id, c.id FROM commitments c
        WHERE c.next_check_at <= due_at
        ORDER BY c.next_check_at
        LIMIT max_rows
    $$;

-- Feed positions of the given organizations (all of them when `orgs` is NULL).
CREATE FUNCTION billing_feed_positions(orgs uuid[])
    RETURNS TABLE (org_id uuid, last_seq bigint, retained_from bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT v.org_id, v.last_seq, v.retained_from FROM violation_sequences v
        WHERE orgs IS NULL OR v.org_id = ANY (orgs)
    $$;

REVOKE ALL ON FUNCTION billing_api_key(uuid), billing_due_segments(timestamptz, bigint),
    billing_due_commitments(timestamptz, bigint), billing_feed_positions(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION billing_api_key(uuid), billing_due_segments(timestamptz, bigint),
    billing_due_commitments(timestamptz, bigint), billing_feed_positions(uuid[]) TO billing_app;
