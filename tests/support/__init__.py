"""Test helpers: a throwaway PostgreSQL server and the Fides example database."""
