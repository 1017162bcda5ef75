"""The sandbox's on-prem database: the vendor's customer, licence and usage tables.

Declared once with SQLAlchemy Core so the same schema is created on SQLite and PostgreSQL, and
outside fixtures (``onprem.json``) can be loaded into it.
"""

from __future__ import annotations

import sqlalchemy as sa

from connectors.sql.discovery import comparable

metadata = sa.MetaData()

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("company", sa.Text, nullable=False),
    sa.Column("country", sa.Text),
    sa.Column("created_at", sa.DateTime),
)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), index=True),
    sa.Column("email", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("phone", sa.Text),
    sa.Column("role", sa.Text),
    sa.Column("created_at", sa.DateTime),
    # Discovery compares lower(email): an expression index keeps that a lookup, not a scan.
    sa.Index("ix_contacts_email_lower", sa.func.lower(sa.column("email"))),
    # ... and phone digits without separators, the very expression discovery compares.
    sa.Index("ix_contacts_phone_digits", comparable(sa.column("phone"), "phone")),
)

licenses = sa.Table(
    "licenses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sen", sa.Text, unique=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), index=True),
    sa.Column("technical_contact_id", sa.Integer, sa.ForeignKey("contacts.id"), index=True),
    sa.Column("billing_contact_id", sa.Integer, sa.ForeignKey("contacts.id"), index=True),
    sa.Column("product", sa.Text),
    sa.Column("tier", sa.Text),
    sa.Column("starts_on", sa.Date),
    sa.Column("ends_on", sa.Date),
)

usage_events = sa.Table(
    "usage_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("license_id", sa.Integer, sa.ForeignKey("licenses.id"), index=True),
    sa.Column("instance_id", sa.Text),
    sa.Column("user_hash", sa.Text),
    sa.Column("event", sa.Text),
    sa.Column("occurred_at", sa.DateTime, index=True),
)

usage_daily = sa.Table(
    "usage_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("product", sa.Text, primary_key=True),
    sa.Column("event", sa.Text, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

# Usage statistics by level (connectors/sql/aggregation.py): a row counts the events of one
# period and group at one level of generalisation, or a period's remainder.
usage_statistics = sa.Table(
    "usage_statistics",
    metadata,
    sa.Column("period_start", sa.Date, primary_key=True),
    sa.Column("level", sa.Text, primary_key=True),
    sa.Column("product", sa.Text, primary_key=True),
    sa.Column("event", sa.Text, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

config_reports = sa.Table(
    "config_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("license_id", sa.Integer, sa.ForeignKey("licenses.id"), index=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), index=True),
    sa.Column("submitted_at", sa.DateTime),
    sa.Column("report", sa.Text),
)

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), index=True),
    sa.Column("purpose", sa.Text, nullable=False),  # analytics | config_collection
    sa.Column("scope", sa.Text, nullable=False),  # per_case | general
    sa.Column("granted_at", sa.DateTime, nullable=False),
    sa.Column("withdrawn_at", sa.DateTime),
    sa.CheckConstraint("purpose IN ('analytics', 'config_collection')", name="ck_consent_purpose"),
    sa.CheckConstraint("scope IN ('per_case', 'general')", name="ck_consent_scope"),
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), index=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id"), index=True),
    sa.Column("number", sa.Text, unique=True),
    sa.Column("amount", sa.Numeric(12, 2)),
    sa.Column("currency", sa.Text),
    sa.Column("issued_on", sa.Date),
)

# Tables in an order that satisfies the foreign keys when loading.
LOAD_ORDER = [t.name for t in metadata.sorted_tables]
