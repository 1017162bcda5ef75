"""Stateful emulators of the SaaS APIs (Microsoft Graph, Google Drive/Sheets, Jira), written
against the vendors' published API references, served on 127.0.0.1 for the sandbox and tests."""
