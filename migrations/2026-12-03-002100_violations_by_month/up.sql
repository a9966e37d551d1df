-- The violation feed is append-only and kept for a retention period (VIOLATION_RETENTION).
-- Partitioned by month of recorded_at, retention drops whole months (DROP TABLE, no row
-- deletes, no vacuum debt) and a year of feed is a dozen tables of one month each.
--
-- A partition key must be part of every unique key: the primary key becomes
-- (org_id, seq, recorded_at). seq stays unique per org without it, because each org's
-- numbers come from its violation_sequences row, taken under that row's lock.
ALTER TABLE violations RENAME TO violations_unpartitioned;
ALTER INDEX violations_pkey RENAME TO violations_unpartitioned_pkey;
ALTER INDEX violations_customer_idx RENAME TO violations_unpartitioned_customer_idx;

CREATE TABLE violations (
    LIKE violations_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (org_id, seq, recorded_at)
) PARTITION BY RANGE (recorded_at);
CREATE INDEX violations_customer_idx ON violations (org_id, customer_id, seq);

-- Rows no month is made for yet (a clock far off, a job that did not run) land here
-- rather than failing the usage call that recorded them; making their month moves them.
CREATE TABLE violations_default PARTITION OF violations DEFAULT;

-- For any table partitioned by range of one timestamptz column with a default partition
-- named `<parent>_default` (the feed here; later migrations partition others the same
-- way): makes `parent`'s partition of the month starting at `month` (UTC) unless it
-- exists, moving into it the rows of that month that the default partition took while
-- the month was missing. Returns the partition's name when it made one. Serialized by a
-- transaction advisory lock, so instances making months at once do not race.
-- A lock wait is bounded: a month made later is made on the next run.
CREATE FUNCTION billing_create_month_partition(parent text, month date)
    RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s'
    AS $$
    DECLARE
        name text := format('%s_y%sm%s', parent, to_char(month, 'YYYY'), to_char(month, 'MM'));
        lo timestamptz := make_timestamptz(extract(year FROM month)::int, extract(month FROM month)::int, 1, 0, 0, 0, 'UTC');
        hi timestamptz := lo + interval '1 month';
        key text;
    BEGIN
        SELECT a.attname INTO key
        FROM pg_partitioned_table pt
        JOIN pg_class c ON c.oid = pt.partrelid
        JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
        WHERE c.relname = parent AND c.relnamespace = 'public'::regnamespace;
        IF key IS NULL THEN
            RAISE EXCEPTION 'billing_create_month_partition: % is not a partitioned table', parent;
        END IF;
        PERFORM pg_advisory_xact_lock(hashtext('billing_create_month_partition'));
        IF to_regclass(name) IS NOT NULL THEN
            RETURN NULL;
        END IF;
        -- Made apart and attached, so rows the default partition holds for the month can
        -- move in first (CREATE TABLE .. PARTITION OF would fail on them).
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name, parent);
        EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) '
                       'INSERT INTO %I SELECT * FROM moved', parent || '_default', key, key, name)
            USING lo, hi;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, name, lo, hi);
        RETURN name;
    END
    $$;

-- Makes the partitions of the current month and of `months_ahead` months after it that
-- are missing; returns their names. The service's jobs call it on every prune run.
CREATE FUNCTION billing_create_partitions_ahead(parent text, months_ahead int)
    RETURNS SETOF text
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT made FROM generate_series(0, months_ahead) AS i,
            LATERAL billing_create_month_partition(
                parent, (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i))::date) AS made
        WHERE made IS NOT NULL
    $$;

-- Drops the feed's months that ended by `cutoff` once no org's feed retains any of their
-- rows (all below the org's retained_from, which the prune job moves past `cutoff` first),
-- and deletes such rows from the default partition. Returns the months dropped. A month
-- holding a row some feed still retains (a transaction that began before the month
-- ended and took its number after a later one) waits for a later run.
CREATE FUNCTION billing_drop_expired_violations(cutoff timestamptz)
    RETURNS SETOF text
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s'
    AS $$
    DECLARE
        part text;
        retained boolean;
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtext('billing_create_month_partition'));
        DELETE FROM violations_default d USING violation_sequences s
            WHERE s.org_id = d.org_id AND d.seq < s.retained_from;
        FOR part IN
            SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'violations'::regclass AND c.relname ~ '^violations_y[0-9]{4}m[0-9]{2}$'
              AND (to_date(substr(c.relname, 13), 'YYYY"m"MM')::timestamp AT TIME ZONE 'UTC')
                  + interval '1 month' <= cutoff
            ORDER BY 1
        LOOP
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM violation_sequences s JOIN %I p
                            ON p.org_id = s.org_id AND p.seq >= s.retained_from)', part)
                INTO retained;
            IF NOT retained THEN
                EXECUTE format('DROP TABLE %I', part);
                RETURN NEXT part;
            END IF;
        END LOOP;
    END
    $$;

REVOKE ALL ON FUNCTION billing_create_month_partition(text, date), billing_create_partitions_ahead(text, int),
    billing_drop_expired_violations(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION billing_create_partitions_ahead(text, int), billing_drop_expired_violations(timestamptz)
    TO billing_app;

-- For migrations that partition a table: makes `parent`'s months from the one of `first`
-- (its earliest row; none: this month) to three ahead. Not for the service.
CREATE FUNCTION billing_create_months_from(parent text, first timestamptz)
    RETURNS void
    LANGUAGE plpgsql
    AS $$
    BEGIN
        PERFORM billing_create_month_partition(parent, month::date)
        FROM generate_series(date_trunc('month', coalesce(first, now()) AT TIME ZONE 'UTC'),
                             date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months',
                             interval '1 month') AS month;
    END
    $$;
REVOKE ALL ON FUNCTION billing_create_months_from(text, timestamptz) FROM PUBLIC;

-- Months for the feed recorded so far and three ahead; then the rows move over.
SELECT billing_create_months_from('violations', (SELECT min(recorded_at) FROM violations_unpartitioned));
INSERT INTO violations SELECT * FROM violations_unpartitioned;
DROP TABLE violations_unpartitioned;

-- Violations are append-only for the service: pruning moves each org's retained_from
-- and drops months through the function above.
ALTER TABLE violations ENABLE ROW LEVEL SECURITY;
ALTER TABLE violations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON violations
    USING (org_id = (SELECT billing_current_org())) WITH CHECK (org_id = (SELECT billing_current_org()));
GRANT SELECT, INSERT ON violations TO billing_app;
