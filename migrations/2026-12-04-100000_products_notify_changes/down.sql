DROP TRIGGER products_changed ON products;
DROP FUNCTION billing_products_changed();
