"""dsrflow's Prefect flows. A worker or a script imports them before Prefect reads its
settings, so the package turns Prefect's analytics off first (a privacy tool phones no one)."""

from dsrflow.local_prefect import no_telemetry

no_telemetry()
