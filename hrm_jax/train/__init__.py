"""HRM-Text training: optimizer and schedules (the rest of the loop arrives with issue #5)."""
