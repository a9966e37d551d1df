DROP TABLE products;
DROP TABLE customers;
