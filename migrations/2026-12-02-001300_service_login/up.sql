-- The service logs in as billing_app itself instead of logging in as the migrating
-- role and switching with SET ROLE: a session that can RESET ROLE is one injected
-- statement away from the owner's rights and from bypassing row security. billing_app
-- is a member of no role, so it cannot switch to any; it owns nothing and has no
-- BYPASSRLS. It gets no password here: with password authentication the operator sets
-- one (ALTER ROLE billing_app PASSWORD ...) and gives the service APP_DATABASE_URL.
DO $$
BEGIN
    IF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'billing_app') THEN
        ALTER ROLE billing_app LOGIN;
    END IF;
EXCEPTION
    -- Roles are cluster-wide: a migration of another database on this cluster may be
    -- altering it at the same moment ("tuple concurrently updated"); then it is done.
    WHEN internal_error THEN NULL;
END
$$;

-- The service reads only the row of the organization its transaction is for (API keys
-- are resolved by billing_api_key(), which does not read this table).
ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;
CREATE POLICY own_organization ON organizations
    USING (id = (SELECT billing_current_org())) WITH CHECK (id = (SELECT billing_current_org()));
