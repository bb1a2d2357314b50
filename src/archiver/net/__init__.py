"""Talking to platforms: the HTTP client, retries and pacing, link checks, OAuth and tokens."""
