"""A stateful Jira Cloud + Service Management emulator for the sandbox and the tests.

``JiraStore`` holds the state, ``JiraEmulator(store, faults).app`` serves it (see ``app`` for the
routes), ``jql`` parses and evaluates the JQL subset the emulator understands.
"""

from sandbox.emulators.jira.app import JiraEmulator
from sandbox.emulators.jira.store import JiraStore

__all__ = ["JiraEmulator", "JiraStore"]
