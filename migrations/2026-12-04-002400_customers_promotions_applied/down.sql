ALTER TABLE customers DROP COLUMN promotions_applied;
