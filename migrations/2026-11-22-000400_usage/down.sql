DROP TABLE violations;
DROP TABLE violation_sequences;
DROP TABLE usage_events;
DROP TABLE usage_alerts;
DROP TABLE usage_totals;
DROP TABLE allowance_limits;
