SELECT pid FROM pg_stat_activity
WHERE application_name = $1 AND pid <> pg_backend_pid() AND state <> 'idle'
