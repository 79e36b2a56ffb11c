"""The provider emulator (CONTRACT.md §4): Gmail, Google OAuth, the Microsoft identity
platform, Graph mail, their pushes (Gmail watch through a Pub/Sub stand-in, Graph
subscriptions; docs/emulator-push.md) and the control API.

Entry points: `emulator.app.create_emulator_app`, `emulator.state.EmulatorState`,
`emulator.server.serve` / `emulator.server.running_emulator`, `python -m emulator`.
"""
