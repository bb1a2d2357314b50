"""TikTok's visibility words, for the connector and its export reader alike."""

# WhoCanView in an export's words ("Everyone", "Friends", "Followers", "Only You") -> the
# archive's visibility.
VISIBILITY_WORDS = {"everyone": "public", "only you": "private", "only me": "private", "self only": "private",
                    "mutual follow friends": "friends"}
