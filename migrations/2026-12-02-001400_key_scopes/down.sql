CREATE INDEX api_keys_org_id_idx ON api_keys (org_id);
DROP INDEX api_keys_org_id_id_idx;
DROP FUNCTION billing_resolve_api_key(uuid, bytea);
ALTER TABLE api_keys
    DROP COLUMN name,
    DROP COLUMN scopes,
    DROP COLUMN expires_at,
    DROP COLUMN last_used_at,
    DROP COLUMN created_by;
