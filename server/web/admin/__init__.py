"""The back office at /admin: server-rendered pages for merchants, district operators and admins."""
