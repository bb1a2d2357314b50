"""What Meta's "Download your information" exports share, for the connectors of Meta's
platforms (Instagram today; Facebook and Threads read the same machinery).

Not a connector: nothing here is registered as an entry point, and the core never names
it. The pieces live in ``archiver_connectors.meta.export``: Meta's mojibake repair, file
patterns for both folder layouts, the wrapped-list reader, media ``uri`` resolution
inside zips and folders, and the timestamp and ``string_map_data`` conventions.
"""
