"""`streamsense replay apps/fraud` on the files users have (issue #21): a CSV is the same
rows as its Parquet twin; a file that cannot be ingested is one line and exit 2 with
nothing ingested; dead letters are said in the summary and over a share exit 1."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from apps.fraud.simulator import FraudSimulatorConfig, simulate_transactions, write_parquet
from typer.testing import CliRunner, Result

from streamsense.brokers import EmbeddedBroker
from streamsense.cli.main import cli
from streamsense.testing import drain_topic

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "apps" / "fraud")
CONFIG = FraudSimulatorConfig(n_customers=30, n_terminals=60, n_days=10, seed=1)
runner = CliRunner()


@pytest.fixture(scope="module")
def payments(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    return simulate_transactions(CONFIG)


def replay(path: Path, state: Path, *options: str) -> Result:
    args = ["replay", APP, "--transactions", str(path), "--state-dir", str(state), *options]
    return runner.invoke(cli, args, catch_exceptions=False)


def topics(state: Path, *names: str) -> dict[str, list[tuple[bytes | None, object]]]:
    """Each topic's (key, value) records; decisions without their latencies."""
    broker = EmbeddedBroker(state / "broker.db")
    try:
        out = {}
        for name in names:
            rows = []
            for record in drain_topic(broker, name):
                value = msgspec.json.decode(record.value or b"")
                if isinstance(value, dict):
                    value.pop("latency_ms", None)
                rows.append((record.key, value))
            out[name] = rows
        return out
    finally:
        broker.close()


def test_a_csv_replays_as_the_same_rows_as_its_parquet_twin(
    payments: pa.Table, tmp_path: Path
) -> None:
    write_parquet(payments, tmp_path / "tx.parquet")
    pcsv.write_csv(payments, tmp_path / "tx.csv")
    for name in ("tx.parquet", "tx.csv"):
        result = replay(tmp_path / name, tmp_path / name.replace(".", "_"))
        assert result.exit_code == 0, result.output
        assert "dead letters" not in result.output.split("commits")[-1]
    names = ("transactions", "labels", "fraud.decisions", "fraud.compromised-cards")
    from_parquet = topics(tmp_path / "tx_parquet", *names)
    assert len(from_parquet["transactions"]) == payments.num_rows
    assert len(from_parquet["labels"]) == payments.num_rows
    assert topics(tmp_path / "tx_csv", *names) == from_parquet


def test_a_file_that_cannot_be_ingested_is_one_line_exit_2_and_nothing_ingested(
    payments: pa.Table, tmp_path: Path
) -> None:
    pcsv.write_csv(payments.drop_columns(["TX_AMOUNT"]), tmp_path / "no_amount.csv")
    write_parquet(payments, tmp_path / "good.parquet")
    whole = (tmp_path / "good.parquet").read_bytes()
    (tmp_path / "corrupt.parquet").write_bytes(whole[: len(whole) // 3])
    expected = {
        "no_amount.csv": "missing column TX_AMOUNT",
        "corrupt.parquet": "cannot be read: ",
    }
    for name, what in expected.items():
        result = replay(tmp_path / name, tmp_path / "state")
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.output, result.output
        assert lines[0].startswith(f"error: {tmp_path / name}: ") and what in lines[0]
    broker = EmbeddedBroker(tmp_path / "state" / "broker.db")
    try:  # nothing ingested, not even a topic made
        assert "transactions" not in broker.list_topics()
    finally:
        broker.close()


def test_dead_letters_are_said_and_over_the_share_exit_1(
    payments: pa.Table, tmp_path: Path
) -> None:
    amounts = [str(a) for a in payments.column("TX_AMOUNT").to_pylist()]
    amounts[5] = amounts[9] = "n/a"  # 2 of 166 rows: over 1 %
    text = payments.set_column(
        payments.schema.get_field_index("TX_AMOUNT"), "TX_AMOUNT", pa.array(amounts)
    )
    pq.write_table(text, tmp_path / "text_amounts.parquet")
    result = replay(tmp_path / "text_amounts.parquet", tmp_path / "strict")
    output = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"2 of {payments.num_rows} input rows (1.20%) went to dead letters" in output
    assert "dead letters by field/reason: TX_AMOUNT: 2" in output
    lenient = replay(
        tmp_path / "text_amounts.parquet", tmp_path / "lenient", "--max-dead-letters", "0.05"
    )
    assert lenient.exit_code == 0, lenient.output
    decided = topics(tmp_path / "lenient", "fraud.decisions")["fraud.decisions"]
    assert len(decided) == payments.num_rows - 2


def test_consume_shows_why_each_dead_letter_is_one(payments: pa.Table, tmp_path: Path) -> None:
    rows = payments.slice(0, 20).to_pylist()
    lines = [msgspec.json.encode(row) for row in rows]
    lines[3] = lines[3].replace(b'"TX_AMOUNT":', b'"TX_AMOUNT":"twelve","X":')
    (tmp_path / "tx.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    state = tmp_path / "state"
    replay(tmp_path / "tx.jsonl", state, "--max-dead-letters", "1")
    consumed = runner.invoke(
        cli, ["consume", "transactions.dead-letters", "--state-dir", str(state)]
    )
    assert consumed.exit_code == 0, consumed.output
    [letter] = consumed.output.strip().splitlines()
    partition, offset, key, value, *why = letter.split("\t")
    assert (partition, offset, key, value.encode()) == (
        "0",
        "0",
        str(rows[3]["CUSTOMER_ID"]),
        lines[3],
    )
    assert why == [
        "reason=Expected `float`, got `str` - at `$.TX_AMOUNT`",
        "field=TX_AMOUNT",
        "source=transactions/0/3",
    ]


def test_produce_reads_csv_and_refuses_a_corrupt_file_in_one_line(
    payments: pa.Table, tmp_path: Path
) -> None:
    pcsv.write_csv(payments, tmp_path / "tx.csv")
    (tmp_path / "tx.parquet").write_bytes(b"PAR1 not really")
    state = str(tmp_path / "state")
    runner.invoke(cli, ["topics", "create", "payments", "--state-dir", state])
    produced = runner.invoke(
        cli,
        [
            "produce",
            "payments",
            str(tmp_path / "tx.csv"),
            "--key",
            "CUSTOMER_ID",
            "--state-dir",
            state,
        ],
    )
    assert produced.exit_code == 0 and f"produced {payments.num_rows}" in produced.output
    sent = topics(tmp_path / "state", "payments")["payments"]
    first = payments.slice(0, 1).to_pylist()[0]
    first["TX_DATETIME"] = first["TX_DATETIME"].isoformat()
    assert len(sent) == payments.num_rows and sent[0] == (str(first["CUSTOMER_ID"]).encode(), first)
    refused = runner.invoke(
        cli, ["produce", "payments", str(tmp_path / "tx.parquet"), "--state-dir", state]
    )
    assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) == 1
    assert refused.output.startswith(f"error: {tmp_path / 'tx.parquet'}: cannot be read: ")
