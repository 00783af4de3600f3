"""Pilot reports (issue 12): the figures an operator decides with, from the product's own
records. Pure computation over plain rows (`rows`, `figures`, `erlang`), a read-only store
reader (`reader`), the HTML with plots (`render`), the console entry `ivr-report` (`cli`), and a
seeded synthetic month for tests and demonstrations (`synthetic`)."""
