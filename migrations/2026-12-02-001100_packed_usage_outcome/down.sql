-- Only possible while no event has a packed answer alone.
ALTER TABLE usage_events DROP CONSTRAINT usage_events_one_outcome;
ALTER TABLE usage_events ALTER COLUMN outcome SET NOT NULL;
ALTER TABLE usage_events DROP COLUMN outcome_packed;
