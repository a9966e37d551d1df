-- Keys carry scopes, a name, an optional expiry, when they were last used and which
-- key made them. Keys made before scopes existed keep every right they had; a key made
-- through the API names its scopes (the API refuses an empty set, the check below too).

ALTER TABLE api_keys
    ADD COLUMN name text NOT NULL DEFAULT '' CHECK (char_length(name) <= 200),
    ADD COLUMN scopes text[] NOT NULL DEFAULT ARRAY['admin', 'write', 'usage', 'read', 'feed']
        CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['admin', 'write', 'usage', 'read', 'feed']),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN created_by uuid;

-- Resolving a key now says what it may do and until when. Instances still running the
-- previous release call billing_api_key() and read its columns by name, so it keeps
-- working beside this one.
CREATE FUNCTION billing_resolve_api_key(key_id uuid, presented_sha256 bytea)
    RETURNS TABLE (org_id uuid, secret_sha256 bytea, created_at timestamptz, revoked_at timestamptz,
                   scopes text[], expires_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
    BEGIN
        -- Remembers use at most once a minute, and only for the key's true secret: a
        -- caller guessing secrets for a known id must not make the key look in use.
        UPDATE api_keys k SET last_used_at = now()
        WHERE k.id = key_id AND k.secret_sha256 = presented_sha256 AND k.revoked_at IS NULL
          AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute');
        RETURN QUERY
            SELECT k.org_id, k.secret_sha256, k.created_at, k.revoked_at, k.scopes, k.expires_at
            FROM api_keys k WHERE k.id = key_id;
    END
    $$;

REVOKE ALL ON FUNCTION billing_resolve_api_key(uuid, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION billing_resolve_api_key(uuid, bytea) TO billing_app;

-- Keys are listed by an org's admin keys, newest first.
CREATE INDEX api_keys_org_id_id_idx ON api_keys (org_id, id);
DROP INDEX api_keys_org_id_idx;
