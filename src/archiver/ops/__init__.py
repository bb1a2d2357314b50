"""Running unattended: the daemon and its schedule, the inbox, alerts, notices, status, services."""
