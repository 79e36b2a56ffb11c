"""What every room stands on: settings, token crypto, metrics, logging, the Temporal client.

Imports nothing of the project but `domain/`.
"""
