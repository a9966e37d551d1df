DROP TRIGGER segments_ledger_last_at ON commit_ledger;
DROP TRIGGER segments_ledger_last_at_updated ON commit_ledger;
DROP FUNCTION billing_segment_ledger_last_at();

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
