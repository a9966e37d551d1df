REVOKE SELECT ON __diesel_schema_migrations FROM billing_app;
