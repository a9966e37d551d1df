-- The catalog: customers and products. Every tenant table is keyed by (org_id, id) so
-- that references between tables cannot cross organizations.

CREATE TABLE customers (
    org_id      uuid NOT NULL REFERENCES organizations (id),
    id          uuid NOT NULL,
    external_id text NOT NULL,
    name        text NOT NULL,
    time_zone   text NOT NULL,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, id),
    CONSTRAINT customers_external_id_key UNIQUE (org_id, external_id)
);

CREATE TABLE products (
    org_id         uuid NOT NULL REFERENCES organizations (id),
    id             uuid NOT NULL,
    code           text NOT NULL,
    name           text NOT NULL,
    tags           text[] NOT NULL DEFAULT '{}',
    service_type   text,
    service_family text,
    kind           text NOT NULL CHECK (kind IN ('SERVICE', 'INVENTORY_VARIANT')),
    version        bigint NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (org_id, id),
    CONSTRAINT products_code_key UNIQUE (org_id, code)
);

CREATE INDEX products_tags_idx ON products USING gin (tags);
