-- What the server allows the pool: its connection limit, what it keeps for superusers
-- (and, from PostgreSQL 16, for roles with pg_use_reserved_connections), the client
-- connections open now, and the current role's own limit and use.
SELECT
    current_setting('max_connections')::bigint AS max_connections,
    current_setting('superuser_reserved_connections')::bigint
        + COALESCE(current_setting('reserved_connections', true)::bigint, 0) AS reserved,
    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS in_use,
    (SELECT rolconnlimit::bigint FROM pg_roles WHERE rolname = current_user) AS role_limit,
    (SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND usename = current_user) AS role_in_use
