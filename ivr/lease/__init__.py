"""Active/standby controllers: one lease in the shared database, a fencing token on writes.

See docs/ha.md. `model` is pure (the decisions from the stored row, who I am and the time);
`records` is the `leases` table (every take-over and renewal one compare-and-set UPDATE);
`fence` refuses the writes and ARI commands of a controller whose token is no longer current;
`keeper` is the thread that waits as a standby, then renews, and ends a process that lost it.
"""
