"""The sandbox's Google Drive v3 + Sheets v4 emulator (one app on one port).

``create_app(state, faults)`` builds it; ``GoogleState`` holds folders, spreadsheets, tokens and
quotas (``quotas``); ``drive_query`` parses Drive's ``q``; ``a1`` parses Sheets ranges.
"""

from sandbox.emulators.google.app import create_app
from sandbox.emulators.google.quotas import GoogleQuotas
from sandbox.emulators.google.state import FOLDER, SPREADSHEET, GoogleState

__all__ = ["FOLDER", "SPREADSHEET", "GoogleQuotas", "GoogleState", "create_app"]
