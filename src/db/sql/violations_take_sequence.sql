INSERT INTO violation_sequences (org_id, last_seq) VALUES ($1, $2)
ON CONFLICT (org_id) DO UPDATE SET last_seq = violation_sequences.last_seq + EXCLUDED.last_seq
RETURNING last_seq
