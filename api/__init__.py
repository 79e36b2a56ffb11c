"""The Starlette HTTP API and pages. `create_app` lives in `api.app`."""
