"""Getting an account's data in: the runner, listings, downloads, imports, jobs and locks."""
