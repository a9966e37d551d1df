-- The answer stored with each usage event, packed (MessagePack with field names, written
-- and read by the service) instead of JSONB: PostgreSQL no longer parses about 1.8 KB of
-- JSON per inserted event nor compresses it (packed, an answer is about 1.3 KB, under
-- the size at which a row is compressed). Events recorded before keep their JSONB
-- answer; exactly one of the two is set.
ALTER TABLE usage_events ADD COLUMN outcome_packed bytea;
ALTER TABLE usage_events ALTER COLUMN outcome DROP NOT NULL;
ALTER TABLE usage_events ADD CONSTRAINT usage_events_one_outcome
    CHECK ((outcome IS NULL) <> (outcome_packed IS NULL)) NOT VALID;
ALTER TABLE usage_events VALIDATE CONSTRAINT usage_events_one_outcome;
