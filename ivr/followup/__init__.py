"""Follow-up: every stored request becomes a call — callbacks, welfare checks, social workers'
in-depth calls, monitoring calls after referrals, and companions' series (docs: README,
"Follow-up calls").

`model` is the vocabulary and its rules (pure); `planner` decides which task is offered to whom
(pure); `journey` is the outbound call as a state machine (pure), reusing the conversation
machine of inbound calls; `dialler` is the adapter; `records` the persistence; `http` serves
/api/followups; `admin_commands` is ``ivr-admin followups`` and friends.
"""
