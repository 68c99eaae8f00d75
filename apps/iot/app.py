"""IoT anomaly detection (issue #15): sensor readings scored live, alerts acted on.

    readings ─→ features ─→ detect ─→ iot.scores   every reading's score (one columnar
    (keyed by   (engine)   (kernels:  │              record per micro-batch)
     series)                rarity)   ├→ alerts ─→ iot.alerts   score ≥ threshold, one per
                                      │            series per cooldown, via action sinks
                                      └→ machine-readings ─→ machines ─→ iot.machine-scores
                                  (re-keyed by machine)  (multi-sensor)  └→ alerts

Each series (one sensor of one machine, or one NAB file) is a key of ``readings``; the
detector stage keeps every series' state in compiled per-series arrays, written to the
platform's changelog for the series that changed. ``streamsense replay apps/iot --nab DIR
--export-detections OUT`` scores the NAB corpus live and writes one CSV per file;
``streamsense demo apps/iot`` runs the machine simulator; ``streamsense iot nab-score``
scores exported detections with NAB's rules.
"""

from __future__ import annotations

from pathlib import Path

import streamsense as ss
from streamsense import features as F
from streamsense.application import InputOption
from streamsense.serving import Serving
from streamsense.serving.sinks import TopicActionSink

from . import demo
from . import serving as serving_setup
from .alerts import AlertSink, MachinesOnly
from .detector_stage import ALERT_THRESHOLD, DEFAULT_DETECTOR, DetectorStage
from .features import feature_stage
from .machine_stage import MACHINE_THRESHOLD, MachineStage
from .nab_input import export_detections, nab_readings
from .readings import (
    ALERTS_TOPIC,
    MACHINE_READINGS,
    MACHINE_SCORES_TOPIC,
    READINGS,
    SCORES_TOPIC,
)
from .score_batches import ScoreBatchSink
from .summary import summary


def build_app(
    detector: str = DEFAULT_DETECTOR,
    name: str = "iot",
    features: F.FeatureStage | None = None,
    *,
    with_features: bool = True,
) -> ss.App:
    """The pipeline with the given single-series detector (the default one for the
    commands), the series' features from the engine (``features``, a fresh stage by
    default; none with ``with_features=False``: the default detector does not need them,
    the API, the alerts' records and the ``features`` detectors do), and the multi-sensor
    detector on the readings that name a machine."""
    pipeline = ss.App(name)
    alerts = AlertSink([TopicActionSink(ALERTS_TOPIC)], threshold=ALERT_THRESHOLD)
    flow = pipeline.flow(READINGS)
    stage = (features or feature_stage()) if with_features else None
    if stage is not None:
        flow.batch(stage)
    detect = DetectorStage(
        "detect", detector, features=stage if stage and not stage.vectors else None
    )
    flow.batch(detect).sink(ScoreBatchSink(SCORES_TOPIC)).sink(alerts).sink(
        MachinesOnly(ss.Repartition(MACHINE_READINGS))
    )
    machine_alerts = AlertSink([TopicActionSink(ALERTS_TOPIC)], threshold=MACHINE_THRESHOLD)
    pipeline.flow(MACHINE_READINGS).batch(MachineStage()).sink(
        ScoreBatchSink(MACHINE_SCORES_TOPIC)
    ).sink(machine_alerts)
    return pipeline


FEATURE_STAGE = feature_stage()
app = build_app(features=FEATURE_STAGE)


def configure(state_dir: Path) -> None:
    """The pipeline keeps the series' rolling features in the state dir's online store,
    where the API reads them."""
    FEATURE_STAGE.attach_online(serving_setup.online_store(state_dir))


def serving(broker: ss.Broker, state_dir: Path) -> Serving:
    return serving_setup.build_serving(broker, state_dir)


def _nab_files(root: Path) -> dict[str, Path]:
    return dict(nab_readings(root))


application = ss.Application(
    app=app,
    inputs={"readings": READINGS},
    input_options=[
        InputOption("readings", "Readings (Parquet or JSON lines: series,timestamp,value)."),
        InputOption(
            "nab",
            "A NAB corpus: every DIR/data/<category>/<name>.csv (labels are not read).",
            kind="dir",
            files=_nab_files,
        ),
    ],
    configure=configure,
    exports={"detections": export_detections},
    serving=serving,
    summary=summary,
    demo=demo.run,
    demo_options=demo.OPTIONS,
)

__all__ = ["FEATURE_STAGE", "READINGS", "app", "application", "build_app"]
