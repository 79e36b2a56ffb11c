"""The email pipeline: normalise, filter, thread, and the one transaction per batch that writes
tickets, messages, ledger outcomes and events. Plain functions over a session or an engine;
the mailbox activities wrap them with heartbeats and Temporal error types."""
