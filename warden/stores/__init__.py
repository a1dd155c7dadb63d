"""Release Warden's own stores: the audit trail, notice deliveries, access grants and sign-offs.

One database (SQLite file by default, PostgreSQL by URL) behind `stores.db`; the governance
file itself is read by `stores.governance`.
"""
