ALTER TABLE applied_promotions DROP CONSTRAINT applied_promotions_commitment_fkey;
DROP TABLE commitment_compensations;
DROP TABLE commitment_periods;
DROP TABLE commitment_edits;
DROP TABLE commitments;
ALTER TABLE usage_events DROP COLUMN contract_id;
