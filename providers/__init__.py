"""Mailbox providers behind one small protocol (`providers.base`)."""
