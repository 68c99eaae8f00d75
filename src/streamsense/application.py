"""The application contract: everything an app offers the command line, typed.

An app is a package (``apps/NAME``, or any importable module) whose ``app.py`` (or the
module itself) defines ``application = ss.Application(app=..., ...)``. The commands read
nothing else from it: every field but ``app`` is optional, and mypy checks an app against
these types.

    streamsense replay APP --input STREAM=FILE [--export NAME=FILE]   inputs, exports, summary
    streamsense replay APP --transactions FILE --export-features F     input_options, exports
    streamsense run APP / status APP                                   app
    streamsense serve APP                                              serving
    streamsense demo [APP]                                             demo (+ demo_options)
    streamsense NAME ...                                               commands
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from streamsense.brokers import Broker
from streamsense.events import Stream
from streamsense.runtime.app import App
from streamsense.runtime.ingest import RowFilter
from streamsense.runtime.worker import WorkerStats

if TYPE_CHECKING:  # the commands import these only when they run (extras)
    import typer
    from rich.console import Console

    from streamsense.serving import Serving

P = TypeVar("P")
OptionValue = int | float | str | Path | None


class Export(Protocol):
    """``replay --export NAME=FILE``: writes what the pipeline produced for event times in
    [start_ms, end_ms) (None: unbounded) to ``path``; returns the rows written."""

    def __call__(
        self, broker: Broker, path: Path, start_ms: int | None, end_ms: int | None
    ) -> int: ...


class Summary(Protocol):
    """Printed after a replay, given the files that were replayed, by stream."""

    def __call__(self, broker: Broker, console: Console, inputs: Mapping[str, Path]) -> None: ...


class DerivedInputs(Protocol):
    """Streams a replay feeds from an input file besides its own (such as delayed labels
    carried by each row): ``(stream, path, row_filter)`` for each."""

    def __call__(
        self, name: str, path: Path, row_filter: RowFilter | None
    ) -> Sequence[tuple[Stream[Any], Path, RowFilter | None]]: ...


class ServingFactory(Protocol):
    """``streamsense serve``: what the app serves over the given broker (decisions, its
    own endpoints, or both: ``streamsense.serving.Serving``)."""

    def __call__(self, broker: Broker, state_dir: Path) -> Serving: ...


@dataclass(frozen=True)
class InputOption:
    """A friendly option for input files: ``--transactions FILE`` feeds the stream of that
    name; with ``files``, one path (``--nab DIR``) maps onto several streams."""

    name: str
    help: str = ""
    kind: Literal["file", "dir"] = "file"
    files: Callable[[Path], Mapping[str, Path]] | None = None

    def streams_for(self, path: Path) -> Mapping[str, Path]:
        return self.files(path) if self.files is not None else {self.name: path}


@dataclass(frozen=True)
class Option:
    """An app's own option of a command (``demo --customers 1000``); its type is its
    default's."""

    name: str
    default: int | float | str
    help: str = ""


@dataclass(frozen=True)
class Replayed:
    """What a replay did: the worker's counts and the seconds it took."""

    stats: WorkerStats
    seconds: float


class Session(Protocol):
    """What a command hands an app's demo, training and commands: the application, an open
    broker, the state dir (configured), and a replay of files through the pipeline."""

    @property
    def application(self) -> Application: ...

    @property
    def broker(self) -> Broker: ...

    @property
    def state_dir(self) -> Path: ...

    @property
    def console(self) -> Console: ...

    def replay(
        self, files: Mapping[str, Path], start_ms: int | None = None, end_ms: int | None = None
    ) -> Replayed:
        """Feeds the rows of ``files`` (by stream) with event times in [start_ms, end_ms)
        and runs the pipeline until it has processed everything; resumes after a crash."""
        ...

    def configure(self) -> None:
        """Reloads what lives in the state dir (new models after training)."""
        ...


class Demo(Protocol):
    """``streamsense demo APP``: makes the app's input files in the (fresh) state dir and
    returns them by stream for the command to replay and summarise, or does it all itself
    (training, say) and returns None."""

    def __call__(
        self, session: Session, options: Mapping[str, OptionValue]
    ) -> Mapping[str, Path] | None: ...


@dataclass(frozen=True)
class Training(Generic[P]):
    """Optional training over a replay, on the app's own protocol ``P`` (which period
    trains, which tests): ``train`` replays input files and puts models in production in
    the state dir; ``evaluate`` scores the protocol's test period live and returns the
    app's own evaluation."""

    train: Callable[[Session, Mapping[str, Path], P], object]
    evaluate: Callable[[Session, Mapping[str, Path], P], object]


@dataclass(frozen=True, kw_only=True)
class Application:
    """An application as the command line sees it: the pipeline (``app``) and what the
    commands may ask of it. Everything but ``app`` is optional.

    ``inputs`` names the streams files feed (default: every flow's source);
    ``input_options`` adds friendly flags for them; ``exports`` are named writers of
    results (``--export NAME=FILE``, also ``--export-NAME FILE``); ``configure`` opens what
    lives in the state dir before a command runs the pipeline; ``commands`` builds the
    app's own command group (``streamsense NAME ...``), imported only when asked."""

    app: App
    inputs: Mapping[str, Stream[Any]] = field(default_factory=dict)
    input_options: Sequence[InputOption] = ()
    derived_inputs: DerivedInputs | None = None
    configure: Callable[[Path], None] | None = None
    exports: Mapping[str, Export] = field(default_factory=dict)
    summary: Summary | None = None
    serving: ServingFactory | None = None
    training: Training[Any] | None = None
    demo: Demo | None = None
    demo_options: Sequence[Option] = ()
    commands: Callable[[], typer.Typer] | None = None

    @property
    def name(self) -> str:
        return self.app.name

    def input_streams(self) -> Mapping[str, Stream[Any]]:
        return self.inputs or {flow.source.name: flow.source for flow in self.app.flows.values()}
