-- `commit_segments.ledger_last_at` (2026-12-04-150000) was kept by statement triggers
-- for every insert and update of ledger entries. The service writes entries only in
-- `db::writes::write`, whose statement now moves the value itself for every segment an
-- entry is on, so for the service's role the triggers found nothing to change, yet each
-- usage write paid for them: the new rows copied into a transition table, a PL/pgSQL
-- call and its UPDATE probing each touched segment (docs/performance.md).
--
-- Now they are row triggers that skip the service's role (`billing_app`, which the
-- service logs in as) in their WHEN clause, so its writes queue no trigger at all and
-- copy no rows. Whoever else writes entries (an operator in psql, a migration) still
-- moves each touched segment up to the entry's effective time, row by row.
DROP TRIGGER segments_ledger_last_at ON commit_ledger;
DROP TRIGGER segments_ledger_last_at_updated ON commit_ledger;
DROP FUNCTION billing_segments_ledger_last_at();

CREATE FUNCTION billing_segment_ledger_last_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE commit_segments s SET ledger_last_at = NEW.effective_at
        WHERE s.org_id = NEW.org_id AND s.commit_id = NEW.commit_id AND s.idx = NEW.segment_idx
          AND (s.ledger_last_at IS NULL OR s.ledger_last_at < NEW.effective_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER segments_ledger_last_at AFTER INSERT ON commit_ledger
    FOR EACH ROW WHEN (current_user <> 'billing_app')
    EXECUTE FUNCTION billing_segment_ledger_last_at();
CREATE TRIGGER segments_ledger_last_at_updated AFTER UPDATE ON commit_ledger
    FOR EACH ROW WHEN (current_user <> 'billing_app')
    EXECUTE FUNCTION billing_segment_ledger_last_at();
