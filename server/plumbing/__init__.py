"""Shared HTTP plumbing for both delivery packages (web/ and api/): who is asking, request ids, rate limits,
ETags, and the persisted-query allow-list."""
