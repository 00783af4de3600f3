"""The call flow as pure logic: menu data, the caller state machine, the ring group."""
