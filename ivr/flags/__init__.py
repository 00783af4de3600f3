"""Abuse flags: a counselor ends an abusive call (*9); the caller's hash is flagged for a
graduated time (ivr.store "abuse flags"), and their next calls are marked for the counselor.

`protection` is the adapter (flags a caller during a call); `http` serves /api/flags and lifts
a flag; `admin_commands` is ``ivr-admin flags`` / ``lift-flag``.
"""
