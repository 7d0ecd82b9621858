"""sessions-dbm: an example third-party driver for sessions-core, over the
standard library's :mod:`dbm`.

Importing this package imports nothing heavy; the driver class lives in
:mod:`sessions_dbm.driver` and is imported only when ``SESSION_DRIVER=dbm``
selects it.
"""

__version__ = "0.1.0"
