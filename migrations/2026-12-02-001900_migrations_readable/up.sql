-- `serve --no-migrate` runs as billing_app and waits until the schema is migrated by a
-- separate step; it reads which migrations are applied, and may change none of them.
GRANT SELECT ON __diesel_schema_migrations TO billing_app;
