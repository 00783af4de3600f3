"""The supervisors' wallboard: who waits, what each counselor is doing and for how long,
today's figures, silence alerts and abuse endings, and who needs a break, live on a wall
screen.

- board.py: the pure model (no I/O, time passed in): member states and time in them, waiting
  callers, today's figures from stored rows.
- alerts.py: the recent silence alerts and abuse endings (pure), heard from the controller's
  and the chat service's `command_listeners`.
- wellbeing.py: who has been on calls past the limit without a break (pure; the workload
  report's break rule).
- records.py: the stored rows both are seeded from at the start (a restart, a take-over).
- http.py: the desk routes (the page and its server-sent event stream), reading the
  controller's `status()`/`members()` and the store.
- monitor.py / monitoring.py: listen, whisper, barge — the pure plan, and the adapter (ARI
  snoops and bridges, the supervisor's phone, the POST routes, the audit lines).
- templates/: the page (Korean, large type); static/: the few lines of JavaScript.
"""
