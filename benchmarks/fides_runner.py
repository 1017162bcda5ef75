"""Fides' own access request, run in Fides' venv; driven by benchmarks/fides_access.py.

Not part of dsrflow and not imported by it: Fides 2.86 needs Python >= 3.13, so it lives in a
venv of its own (``.bench/fides-venv``) and this script runs there, as a child of the benchmark.
It sets Fides up as its integration tests do (tests/conftest.py and
tests/ops/integration_tests/test_sql_task.py of ethyca/fides): its application database
migrated and seeded, an access policy with one rule on the ``user`` data category, a postgres
ConnectionConfig for the measured database, the graph of ``postgres_example_test_dataset.yml``;
then, per run, a new PrivacyRequest with the subject's e-mail identity cached and persisted,
``access_runner`` (DSR 3.0: the traversal, RequestTasks in the application database, each task
run by Celery in-process, ``task_always_eager``) and the raw access results read back.

Protocol (one JSON object per line): it prints ``{"ready": ...}`` once set up, then answers
each ``run`` read on stdin with ``{"ms": ..., "rows": {collection: count}}``; ``quit`` or the end
of stdin ends it. Fides' settings come from the environment (``FIDES__...``), set by the parent.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any

import yaml


def setup(dataset_path: str, database: dict[str, Any], app_url: str) -> tuple[Any, ...]:
    # Fides reads its settings when first imported: every import of it stays in here.
    from fides.api.db.database import init_db
    from fides.api.db.seed import load_default_organization, load_default_taxonomy
    from fides.api.db.session import get_db_engine, get_db_session
    from fides.api.graph.graph import DatasetGraph
    from fides.api.models.connectionconfig import AccessLevel, ConnectionConfig, ConnectionType
    from fides.api.models.datasetconfig import convert_dataset_to_graph
    from fides.api.models.policy import ActionType, Policy, Rule, RuleTarget
    from fides.api.models.storage import StorageConfig
    from fides.api.schemas.storage.storage import (
        FileNaming,
        ResponseFormat,
        StorageDetails,
        StorageType,
    )
    from fides.config import CONFIG
    from fideslang.models import Dataset

    init_db(app_url)  # Fides' alembic migrations
    engine = get_db_engine(database_uri=app_url)
    session = get_db_session(CONFIG, engine=engine)()
    # What the app's start-up seeds (fides.api.db.seed.load_default_resources) that an access
    # request needs: the organisation and the taxonomy (the data categories the rule targets).
    # Not its SaaS connector templates: they are read from the source tree's data/ folder.
    load_default_organization(session)
    load_default_taxonomy(session)
    storage = StorageConfig.create(
        db=session,
        data={
            "name": "local",
            "key": "bench_local",
            "type": StorageType.local,
            "details": {StorageDetails.NAMING.value: FileNaming.request_id.value},
            "format": ResponseFormat.json,
        },
    )
    policy = Policy.create(db=session, data={"name": "bench access", "key": "bench_access"})
    rule = Rule.create(
        db=session,
        data={
            "action_type": ActionType.access.value,
            "name": "bench access rule",
            "policy_id": policy.id,
            "storage_destination_id": storage.id,
        },
    )
    RuleTarget.create(db=session, data={"data_category": "user", "rule_id": rule.id})
    connection = ConnectionConfig.create(
        db=session,
        data={
            "key": "postgres_example",
            "name": "postgres_example",
            "connection_type": ConnectionType.postgres,
            "access": AccessLevel.read,
            "secrets": database,
        },
    )
    with open(dataset_path, encoding="utf-8") as stream:
        dataset = Dataset.model_validate(yaml.safe_load(stream)["dataset"][0])
    graph = DatasetGraph(convert_dataset_to_graph(dataset, connection.key))
    return session, policy, connection, graph


def access(session: Any, policy: Any, connection: Any, graph: Any, email: str) -> dict[str, int]:
    """One access request as Fides' ``access_runner_tester`` runs it; rows per collection."""
    from fides.api.common_exceptions import PrivacyRequestExit
    from fides.api.models.policy import ActionType
    from fides.api.models.privacy_request import PrivacyRequest, RequestTask
    from fides.api.models.privacy_request.execution_log import EXITED_EXECUTION_LOG_STATUSES
    from fides.api.schemas.privacy_request import PrivacyRequestStatus
    from fides.api.schemas.redis_cache import Identity
    from fides.api.task.graph_runners import access_runner

    request = PrivacyRequest.create(
        db=session,
        data={
            "status": PrivacyRequestStatus.in_processing,
            "policy_id": policy.id,
            "origin": "https://example.com/",
        },
    )
    request.cache_identity({"email": email})
    request.persist_identity(db=session, identity=Identity(email=email))
    # DSR 3.0 raises PrivacyRequestExit once the tasks are queued (here: run, eagerly).
    with contextlib.suppress(PrivacyRequestExit):
        access_runner(
            request,
            policy,
            graph,
            [connection],
            {"email": email},
            session,
            privacy_request_proceed=False,
        )
    session.commit()
    tasks = session.query(RequestTask).filter(
        RequestTask.privacy_request_id == request.id,
        RequestTask.action_type == ActionType.access,
    )
    if not all(task.status in EXITED_EXECUTION_LOG_STATUSES for task in tasks):
        raise RuntimeError("Fides: access tasks still running after the eager run")
    results = request.get_raw_access_results()
    return {key.split(":")[-1]: len(rows or []) for key, rows in results.items() if rows}


def main() -> None:
    # The answers get their own copy of stdout; whatever Fides prints goes to the log (stderr).
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    config = json.loads(sys.argv[1])
    session, policy, connection, graph = setup(
        config["dataset"], config["database"], config["app_url"]
    )
    import fides

    print(json.dumps({"ready": True, "version": fides.__version__}), file=answers, flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        started = time.perf_counter()
        rows = access(session, policy, connection, graph, config["email"])
        elapsed = (time.perf_counter() - started) * 1000
        print(json.dumps({"ms": elapsed, "rows": rows}), file=answers, flush=True)


if __name__ == "__main__":
    main()
