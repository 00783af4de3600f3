"""The 외로움안녕120 IVR: an Asterisk ARI controller for Seoul's loneliness hotline."""
