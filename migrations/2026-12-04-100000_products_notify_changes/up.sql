-- Every instance caches the products the usage path reads (by id and by code, per
-- organization). A product updated or deleted by any writer (the service, or an operator
-- in psql) announces its organization on `billing_products` when its transaction
-- commits, and every instance forgets that organization's products. New products need
-- no notice: a product not found is never cached.
CREATE FUNCTION billing_products_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('billing_products', OLD.org_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER products_changed AFTER UPDATE OR DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION billing_products_changed();
