DROP FUNCTION billing_feed_positions(uuid[]);
DROP FUNCTION billing_due_commitments(timestamptz, bigint);
DROP FUNCTION billing_due_segments(timestamptz, bigint);
DROP FUNCTION billing_api_key(uuid);

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
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', t);
        EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', t);
        EXECUTE format('REVOKE ALL ON %s FROM billing_app', t);
    END LOOP;
END
$$;

DROP FUNCTION billing_current_org();
REVOKE ALL ON organizations FROM billing_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM billing_app;
REVOKE USAGE ON SCHEMA public FROM billing_app;
-- The role stays: other databases on this cluster may use it.
