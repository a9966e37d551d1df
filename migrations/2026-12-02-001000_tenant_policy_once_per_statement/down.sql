DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT schemaname, tablename FROM pg_policies
        WHERE policyname = 'tenant_isolation' AND schemaname = 'public'
    LOOP
        EXECUTE format(
            'ALTER POLICY tenant_isolation ON %I.%I USING (org_id = billing_current_org()) '
            'WITH CHECK (org_id = billing_current_org())', p.schemaname, p.tablename);
    END LOOP;
END
$$;
