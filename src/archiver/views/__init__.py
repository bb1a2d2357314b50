"""Looking at the archive: Datasette (serve), the report, the audience."""
