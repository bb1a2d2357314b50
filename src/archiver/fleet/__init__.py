"""The fleet: many accounts (thousands, of many tenants) archived by workers on many machines,
scheduled through a job queue in PostgreSQL (Procrastinate). Installed with the ``fleet``
extra (``pip install 'archiver[fleet]'``); the single-user install never imports it.

    db.py        the PostgreSQL connection ([fleet] database, ARCHIVER_FLEET_DATABASE)
    schema.py    the fleet's tables, as a list of DDL parts `archiver fleet init` applies
                 after the queue's own schema

See docs/fleet.md for the picture.
"""
