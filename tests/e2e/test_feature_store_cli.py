"""The feature-store commands, driven by a project file, as users run them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from typer.testing import CliRunner

import streamsense as ss
from streamsense import features as F
from streamsense.brokers import EmbeddedBroker
from streamsense.cli.main import cli
from streamsense.runtime.worker import Worker
from streamsense.store import open_online_store
from streamsense.store.offline import OfflineStore
from streamsense.testing import drain_topic
from tests.apps.counter import make_clicks
from tests.apps.windowed import FEATURES, clicks, emit

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def make_project(tmp_path: Path) -> Path:
    project = tmp_path / "streamsense.yaml"
    project.write_text(
        textwrap.dedent(
            f"""\
            project: clicks
            broker: embedded://.streamsense/broker.db
            online_store: sqlite://.streamsense/online.db
            offline_store: .streamsense/offline
            feature_sets:
              - {ROOT / "tests" / "apps" / "windowed.py"}:FEATURES
            """
        )
    )
    broker = EmbeddedBroker(tmp_path / ".streamsense" / "broker.db")
    online = open_online_store(f"sqlite://{tmp_path / '.streamsense' / 'online.db'}")
    app = ss.App("cli-store")
    stage = F.FeatureStage("features", FEATURES, idle_timeout_ms=None, online=online)
    app.flow(clicks).batch(stage).stage("emit", emit).sink(ss.TopicSink("cli-store.out"))
    worker = Worker(app, broker)
    worker.ensure_topics()
    with broker.producer() as producer:
        for click in make_clicks(1_000, users=8):
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
    worker.run(until_caught_up=True)
    broker.close()
    online.close()
    return project


def test_plan_apply_backfill_materialize_get_and_verify(tmp_path: Path) -> None:
    project = str(make_project(tmp_path))
    assert "5 to add" in invoke("plan", "--project", project)
    assert "5 added" in invoke("apply", "--project", project)
    assert "0 to add, 0 to change, 0 to remove, 5 unchanged" in invoke("plan", "--project", project)
    assert "1,000 events" in invoke("backfill", "--project", project)
    copied = invoke("materialize", "--project", project)
    assert "wclicks: 1,000 records copied to events/wclicks" in copied
    assert "features.feature-log: 1,000 records copied to feature_log/features" in copied
    offline = OfflineStore(tmp_path / ".streamsense" / "offline")
    assert offline.query("SELECT count(*) FROM events__wclicks").column(0)[0].as_py() == 1_000
    logged = offline.query("SELECT count(DISTINCT event_id) FROM feature_log__features")
    assert logged.column(0)[0].as_py() == 1_000
    got = invoke(
        "features",
        "get",
        "windowed.user",
        "user-3",
        "--at",
        "2020-09-13T12:43:00",
        "--project",
        project,
    )
    # 12:43:00 is click 980 (one a second from 12:26:40); user-3 clicked at i = 3 mod 8 with
    # amount i mod 10. 10 s: 971, 979 (1 + 9); 1 min: 923..979, amounts 3 1 9 7 5 3 1 9
    # (mean 4.75); the last 5 clicks' max: 9; the 30 s tumbling window opening at 12:43:00
    # holds none of user-3's clicks yet.
    assert "│ user-3 │ 2 │ 10 │ 4.75 │ 9 │ 0 │" in got, got
    assert "every sampled vector matches" in invoke(
        "verify", "--project", project, "--sample", "200"
    )


def test_verify_exits_non_zero_when_a_definition_changed(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    changed = tmp_path / "changed.py"
    changed.write_text(
        (ROOT / "tests" / "apps" / "windowed.py")
        .read_text()
        .replace('F.rolling("10s")', 'F.rolling("25s")')
    )
    project.write_text(
        project.read_text().replace(str(ROOT / "tests" / "apps" / "windowed.py"), str(changed))
    )
    out = invoke("verify", "--project", str(project), "--sample", "200", code=1)
    assert "MISMATCH" in out
    broker = EmbeddedBroker(tmp_path / ".streamsense" / "broker.db")
    assert len(drain_topic(broker, "features.feature-log")) == 1_000
    broker.close()
