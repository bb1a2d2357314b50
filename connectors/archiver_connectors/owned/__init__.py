"""What the importers of owned channels share (not a connector: no entry point).

An owned channel is one the person owns and no platform can take away: their newsletter's
subscriber list (Mailchimp, Substack, Buttondown) or their shop's customer list (Shopify,
WooCommerce). Each provider's connector (``archiver_connectors.<provider>``) says only how
its CSV export looks and what a row means; ``OwnedListConnector`` here reads the files,
reports and skips a malformed row by file and line, and yields ``OwnedContact`` records.

An email address is personal data: no message, error or log line here ever holds one (a
row is named by its file and line, see ``records.OwnedContact.where``), and the contact's
``raw`` payload keeps the provider's columns except addresses, phone numbers, IP addresses
and locations (``kept_columns``), which archiver never copies.
"""
