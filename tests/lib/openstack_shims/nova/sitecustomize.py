"""Loaded into nova's services only (tests/lib/openstack.py puts this
directory on their PYTHONPATH; not for nova-manage, whose migrations begin
their own transactions): every SQLite transaction starts with BEGIN
IMMEDIATE, so nova's conductor, scheduler, compute and API, which write the
same database files at once, queue on the write lock instead of failing with
"database is locked" when a read transaction later wants to write. Keystone
and neutron break under it: they must never see this file.

oslo.db already turns pysqlite's implicit BEGIN off and emits its own BEGIN
unless conn.info says a transaction is open; a listener on the Engine class
runs before oslo.db's per-engine one, so it begins first and says so."""
try:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "begin")
    def _begin_immediate(conn):
        if conn.dialect.name == "sqlite" and "in_transaction" not in conn.info:
            conn.connection.dbapi_connection.isolation_level = None
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.info["in_transaction"] = True
except ImportError:
    pass
