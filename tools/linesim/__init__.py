"""Far ends of the box's virtual lines: the exchange side of E1 spans and of analog CO lines."""
