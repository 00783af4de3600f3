"""Audio analysis of calls (silence detection, Korean speech recognition).

Nothing is here yet: this package arrives with the "Listening to the call" work. It will never
import `ivr`.
"""
