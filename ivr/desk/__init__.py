"""The counselor screen: the contact in front of the counselor, the in-call buttons, the
wrap-up form, their own state and their follow-up worklist, live in the browser.

- screen.py: the pure model (no I/O, time passed in): the contact and member views in Korean,
  the phone notices, the wrap-up form's checks, the buttons and what they stand for.
- http.py: the desk routes (the page, its server-sent event stream, the three forms), reading
  the controller's calls and members and the store; buttons go through `Controller.submit`.
- templates/: the page (Korean); static/: the few lines of JavaScript and CSS.
"""
