DROP TABLE drawdown_requests;
DROP TABLE commit_ledger;
DROP TABLE commit_segments;
DROP TABLE commits;
