-- The usage path reads, with each open segment it may draw from, the segment's ledger
-- entries effective after the event (a late event must not spend what later entries
-- already count on). Nearly always there are none, yet finding none probed the ledger's
-- index in every month partition from the event's on, for every segment: about half of
-- that statement's time in a batch (docs/performance.md). `ledger_last_at` is the latest
-- effective time among the segment's entries (NULL: none), so the read skips the probe
-- when it is not after the event.
--
-- Kept by these triggers for any insert or update through `commit_ledger` (the service,
-- or an operator in psql): statement triggers that move each touched segment's value up
-- to the latest entry the statement wrote. The service only inserts entries; an
-- update or delete by hand that moves an entry earlier leaves the value later than the
-- entries, which only costs a probe that finds none, so nothing can leave it too early.
-- The usage write sets the value with the balance it writes in the same statement, so
-- for it the trigger finds nothing left to change. (A trigger with a transition table
-- serves one event, hence two.)
ALTER TABLE commit_segments ADD COLUMN ledger_last_at timestamptz;

UPDATE commit_segments s SET ledger_last_at = l.last_at
    FROM (SELECT org_id, commit_id, segment_idx, max(effective_at) AS last_at
          FROM commit_ledger GROUP BY org_id, commit_id, segment_idx) l
    WHERE s.org_id = l.org_id AND s.commit_id = l.commit_id AND s.idx = l.segment_idx;

CREATE FUNCTION billing_segments_ledger_last_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE commit_segments s SET ledger_last_at = n.last_at
        FROM (SELECT org_id, commit_id, segment_idx, max(effective_at) AS last_at
              FROM new_entries GROUP BY org_id, commit_id, segment_idx) n
        WHERE s.org_id = n.org_id AND s.commit_id = n.commit_id AND s.idx = n.segment_idx
          AND (s.ledger_last_at IS NULL OR s.ledger_last_at < n.last_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER segments_ledger_last_at AFTER INSERT ON commit_ledger
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION billing_segments_ledger_last_at();
CREATE TRIGGER segments_ledger_last_at_updated AFTER UPDATE ON commit_ledger
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION billing_segments_ledger_last_at();
