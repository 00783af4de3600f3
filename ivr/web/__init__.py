"""The web desk's shared room: the site (its own port), sign-in, sessions, CSRF, roles, the
base template and static files. The page families live in their own rooms and plug in with
``add_routes(desk_app)``: ivr/wallboard/ (supervisors' live board) now; the counselor screen
(desk/) and the chat channel (chat/) later. See docs/desk.md."""
