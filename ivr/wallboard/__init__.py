"""The supervisors' wallboard: who waits, what each counselor is doing and for how long, and
today's figures, live on a wall screen.

- board.py: the pure model (no I/O, time passed in): member states and time in them, waiting
  callers, today's figures from stored rows.
- http.py: the desk routes (the page and its server-sent event stream), reading the
  controller's `status()`/`members()` and the store.
- monitor.py / monitoring.py: listen, whisper, barge — the pure plan, and the adapter (ARI
  snoops and bridges, the supervisor's phone, the POST routes, the audit lines).
- templates/: the page (Korean, large type); static/: the few lines of JavaScript.
"""
