"""Mastodon's visibility words, for the connector, its API mapping and its export reader."""

# Mastodon's visibility words -> the archive's: "private" is followers only, "direct"
# only the people the post mentions.
VISIBILITY_WORDS = {"private": "followers", "direct": "private"}
