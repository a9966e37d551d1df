-- The deployment's secret for sealing page tokens and feed cursors (domain::seal):
-- one row, shared by every instance, made here so it exists before any instance
-- serves. gen_random_uuid() draws from the server's strong random source; two of them
-- give 244 random bits (the version and variant bits of each are fixed).
CREATE TABLE token_secrets (
    id smallint PRIMARY KEY CHECK (id = 1),
    secret bytea NOT NULL CHECK (length(secret) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO token_secrets (id, secret)
VALUES (1, decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

GRANT SELECT ON token_secrets TO billing_app;
