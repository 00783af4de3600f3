"""The text chat channel (외로움챗봇 + 채팅 상담): a public page for citizens, queued into the
counselors' ring group like a call, taken on the counselor's desk.

- journey.py: the pure machine of one chat (guided start, consent, queue, messages, ends).
- service.py: the adapter: live chats in memory, the ring group's chat offers, the streams.
- records.py: the rows (`chats`, `chat_messages` sealed, `chat_access`), audited reads.
- http.py: the routes (public `/chat`, the counselor's `/desk/chats`), templates/, static/.
"""
