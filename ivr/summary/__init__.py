"""Consented call summaries: transcription jobs, sealed transcripts and summaries, needs.

See docs/summaries.md. `needs` and `summarize` are pure; `jobs` is the queue in the database;
`worker` is the `ivr-summarize` process; `records` holds the audited reads, notes, withdrawal
and retention that `ivr-admin` exposes.
"""
