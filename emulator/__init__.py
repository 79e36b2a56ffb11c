"""The provider emulator (CONTRACT.md §4): Gmail, Google OAuth and the control API.

Entry points: `emulator.app.create_emulator_app`, `emulator.state.EmulatorState`,
`emulator.server.serve` / `emulator.server.running_emulator`, `python -m emulator`.
"""
