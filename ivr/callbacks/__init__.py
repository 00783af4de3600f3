"""Callback and follow-up requests: a caller who waited too long (*8 from a counselor, or the
caller's own key) asks to be called back; the number is sealed, never stored in clear.

`sealing` is the adapter (seals and stores a request during a call); the rows live in the one
database (ivr.store, "callback requests"); `http` serves /api/callbacks; `admin_commands` is
``ivr-admin callbacks``.
"""
