"""Staff-facing state that is not about one call: phone registrations, stored member states."""
