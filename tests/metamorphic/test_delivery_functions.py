"""The delivery orders themselves: what they keep, what they bound, and that a seed fixes them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import orjson
import pytest
from tests.metamorphic import delivery, store_snapshot
from tests.metamorphic.store_snapshot import tolerated

from clicktrail.processors.intake import Rejection

START = datetime(2026, 3, 1, tzinfo=UTC)


def click(n: int, seconds: float, click_id: str | None = None) -> bytes:
    ts = START + timedelta(seconds=seconds)
    return orjson.dumps(
        {
            "type": "click",
            "event_id": f"c{n}",
            "ts": int(ts.timestamp() * 1000),
            "schema_version": 1,
            "click_id": click_id or f"click-{n:04d}",
            "campaign_id": "camp",
            "partner_id": "partner",
            "landing_url": "https://example.com/",
            "user": {"user_id": f"u{n % 7}", "ip": "203.0.113.9"},
        }
    )


def conversion(n: int, seconds: float, click_id: str | None, user: str | None) -> bytes:
    ts = START + timedelta(seconds=seconds)
    return orjson.dumps(
        {
            "type": "conversion",
            "event_id": f"v{n}",
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "schema_version": 1,
            "txid": f"tx{n}",
            "action": "purchase",
            **({"click_id": click_id} if click_id else {}),
            "user": {"user_id": user} if user else {},
        }
    )


def impression(n: int, seconds: float) -> bytes:
    ts = START + timedelta(seconds=seconds)
    return orjson.dumps(
        {
            "type": "impression",
            "event_id": f"i{n}",
            "ts": int(ts.timestamp() * 1000),
            "schema_version": 1,
            "impression_id": f"imp-{n}",
            "campaign_id": "camp",
            "partner_id": "partner",
            "user": {"user_id": f"u{n % 7}"},
        }
    )


def stream(size: int = 400) -> list[bytes]:
    """Distinct lines in time order, 10 s apart on average with bursts of equal times;
    every third a conversion (half by click id, half by user), every fifth an impression."""
    lines = []
    for n in range(size):
        seconds = n * 10 - (n % 4) * 10  # groups of four share a timestamp
        if n % 3 == 0:
            by_click = n % 2 == 0
            lines.append(
                conversion(n, seconds, f"click-{n - 3:04d}" if by_click else None, f"u{n % 7}")
            )
        elif n % 5 == 0:
            lines.append(impression(n, seconds))
        else:
            lines.append(click(n, seconds))
    return lines


def test_the_test_lines_are_valid_events() -> None:
    """Else every line would fall to partition 0 and the partition tests would prove nothing."""
    for line in stream(12):
        assert not isinstance(delivery.PARSER.parse(line), Rejection), line


def positions(lines: list[bytes]) -> dict[bytes, int]:
    return {line: i for i, line in enumerate(lines)}


class TestEventTime:
    def test_reads_epoch_milliseconds_and_rfc3339(self) -> None:
        assert delivery.event_time(click(1, 1.5)) == (START + timedelta(seconds=1.5)).timestamp()
        assert (
            delivery.event_time(conversion(2, 2.25, None, "u"))
            == (START + timedelta(seconds=2.25)).timestamp()
        )

    def test_a_line_without_time_is_refused(self) -> None:
        with pytest.raises(ValueError, match="no event time"):
            delivery.event_time(b'{"type":"click"}')


class TestTimeOrder:
    def test_sorts_by_event_time_and_keeps_ties_in_input_order(self) -> None:
        lines = stream()
        shuffled = list(reversed(lines))
        ordered = delivery.time_order(shuffled)
        times = [delivery.event_time(line) for line in ordered]
        assert times == sorted(times)
        assert Counter(ordered) == Counter(lines)
        first_tie = [line for line in shuffled if delivery.event_time(line) == times[0]]
        assert ordered[: len(first_tie)] == first_tie


class TestBoundedShuffle:
    @pytest.mark.parametrize(("max_positions", "max_seconds"), [(5, 1_000.0), (50, 25.0)])
    def test_a_permutation_within_both_bounds(self, max_positions: int, max_seconds: float) -> None:
        lines = stream()
        out = delivery.bounded_shuffle(
            lines, seed=4, max_positions=max_positions, max_seconds=max_seconds
        )
        assert sorted(out) == sorted(lines)
        assert out != lines
        before = positions(lines)
        assert max(abs(before[line] - i) for i, line in enumerate(out)) <= max_positions
        latest = float("-inf")  # in time order, lateness is how far behind the maximum
        for line in out:
            ts = delivery.event_time(line)
            assert latest - ts <= max_seconds
            latest = max(latest, ts)

    def test_the_bounds_are_used(self) -> None:
        lines = stream()
        out = delivery.bounded_shuffle(lines, seed=4, max_positions=5, max_seconds=1_000)
        before = positions(lines)
        assert max(abs(before[line] - i) for i, line in enumerate(out)) >= 4

    def test_zero_bounds_move_nothing_across_time(self) -> None:
        lines = stream()
        assert delivery.bounded_shuffle(lines, seed=4, max_positions=0, max_seconds=60) == lines
        out = delivery.bounded_shuffle(lines, seed=4, max_positions=9, max_seconds=0)
        assert out != lines, "lines of equal time may still swap"
        times = [delivery.event_time(line) for line in out]
        assert times == sorted(times)

    def test_negative_bounds_are_refused(self) -> None:
        with pytest.raises(ValueError, match="bounds"):
            delivery.bounded_shuffle([], seed=1, max_positions=-1, max_seconds=1)

    def test_the_seed_fixes_the_order(self) -> None:
        lines = stream()
        a = delivery.bounded_shuffle(lines, seed=4, max_positions=9, max_seconds=60)
        assert a == delivery.bounded_shuffle(lines, seed=4, max_positions=9, max_seconds=60)
        assert a != delivery.bounded_shuffle(lines, seed=5, max_positions=9, max_seconds=60)


class TestDuplicates:
    def test_the_lines_plus_exact_copies(self) -> None:
        lines = stream()
        out = delivery.with_duplicates(lines, seed=2, share=0.1)
        counts = Counter(out)
        assert set(counts) == set(lines)  # byte for byte: a copy has its original's event_id
        assert set(counts.values()) == {1, 2}
        assert 20 <= len(out) - len(lines) <= 60

    def test_lines_without_a_copy_keep_their_order(self) -> None:
        lines = stream()
        out = delivery.with_duplicates(lines, seed=2, share=0.1)
        counts = Counter(out)
        single = {line for line in lines if counts[line] == 1}
        assert [line for line in out if line in single] == [
            line for line in lines if line in single
        ]

    def test_some_copies_arrive_far_ahead_of_their_time(self) -> None:
        lines = stream()
        out = delivery.with_duplicates(lines, seed=2, share=0.1)
        before = positions(lines)
        seen: set[bytes] = set()
        ahead = []
        for i, line in enumerate(out):
            if line not in seen and out.count(line) == 2:
                ahead.append(before[line] - i)  # the first copy, by its original's place
            seen.add(line)
        assert max(ahead) > 100  # over 1,000 s of event time early

    def test_the_seed_fixes_the_copies(self) -> None:
        lines = stream()
        a = delivery.with_duplicates(lines, seed=2, share=0.1)
        assert a == delivery.with_duplicates(lines, seed=2, share=0.1)
        assert a != delivery.with_duplicates(lines, seed=3, share=0.1)

    def test_a_share_outside_zero_to_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="share"):
            delivery.with_duplicates([], seed=1, share=1.5)


class TestConversionsFirst:
    def test_every_conversion_then_the_rest_each_in_order(self) -> None:
        lines = stream()
        out = delivery.conversions_first(lines)
        types = [delivery.event_type(line) for line in out]
        boundary = types.index("click")
        assert set(types[:boundary]) == {"conversion"}
        assert "conversion" not in types[boundary:]
        assert out[:boundary] == [line for line in lines if b'"conversion"' in line]
        assert out[boundary:] == [line for line in lines if b'"conversion"' not in line]


class TestTwoWorkers:
    def test_a_permutation_that_keeps_each_partition_in_order(self) -> None:
        lines = stream()
        out = delivery.two_workers(lines, seed=3)
        assert sorted(out) == sorted(lines)
        assert out != lines
        for partition in (0, 1):
            mine = [line for line in lines if delivery.partition_of(line, 2) == partition]
            assert [line for line in out if delivery.partition_of(line, 2) == partition] == mine
            assert mine, "both partitions get lines"

    def test_each_key_keeps_its_order(self) -> None:
        """A click and the conversions naming it share a key, so they stay in order."""
        lines = stream()
        out = delivery.two_workers(lines, seed=3)
        for n in range(0, 400, 6):  # conversions by click id name click n - 3
            named = f"click-{n - 3:04d}".encode()
            assert [line for line in out if named in line] == [
                line for line in lines if named in line
            ]

    def test_partitions_follow_the_kafka_key(self) -> None:
        """Key as bus.topics.partition_key: a conversion with a click id goes where its
        click goes; one by user id where that user's other user-keyed conversions go."""
        assert delivery.partition_of(click(1, 0, "k-1"), 2) == delivery.partition_of(
            conversion(2, 5, "k-1", "someone"), 2
        )
        by_user = {delivery.partition_of(conversion(n, n, None, "u-x"), 2) for n in range(20)}
        assert len(by_user) == 1
        spread = {delivery.partition_of(click(n, 0, f"k-{n}"), 2) for n in range(40)}
        assert spread == {0, 1}

    def test_the_interleaving_is_mixed_and_fixed_by_the_seed(self) -> None:
        lines = stream()
        a = delivery.two_workers(lines, seed=3)
        assert a == delivery.two_workers(lines, seed=3)
        assert a != delivery.two_workers(lines, seed=4)
        switches = sum(
            delivery.partition_of(x, 2) != delivery.partition_of(y, 2) for x, y in pairwise(a)
        )
        assert switches > 50, "not one partition after the other"

    def test_a_refused_line_goes_to_partition_zero(self) -> None:
        assert delivery.partition_of(b'{"type":"click","event_id":"x"}', 2) == 0


class TestTolerated:
    """Only a partner window's anomaly reason and a transaction's relabelled id pass."""

    @staticmethod
    def verdicts(**rows: tuple[str, str, tuple[str, ...]]) -> dict[tuple[str, str, str], tuple]:
        return {("partner", name, "12:00"): values for name, values in rows.items()}

    def test_a_partner_anomaly_alone_is_tolerated_and_nothing_else(self) -> None:
        want = {"verdicts": self.verdicts(a=("a", "ok", ("partner_anomaly",)))}
        assert tolerated(diff_of(want, {"verdicts": {}})) == []
        want = {"verdicts": self.verdicts(a=("a", "reject", ("partner_fraud_share",)))}
        assert tolerated(diff_of(want, {"verdicts": {}})) != []
        got = {"verdicts": self.verdicts(a=("a", "reject", ("partner_anomaly",)))}
        assert tolerated(diff_of(want, got)) != []

    def test_a_relabelled_transaction_is_tolerated_and_a_moved_credit_not(self) -> None:
        columns = store_snapshot.ATTRIBUTED.values
        row = dict.fromkeys(columns, "")
        one = tuple({**row, "txid": "T1", "partner_id": "p", "conversion_ts": 1}.values())
        same = tuple({**row, "txid": "T1", "partner_id": "p", "conversion_ts": 2}.values())
        moved = tuple({**row, "txid": "T1", "partner_id": "q", "conversion_ts": 2}.values())
        want = {"attributed": {("v1", "last_click", ""): one}}
        assert tolerated(diff_of(want, {"attributed": {("v2", "last_click", ""): same}})) == []
        assert tolerated(diff_of(want, {"attributed": {("v2", "last_click", ""): moved}})) != []


def diff_of(want: dict[str, dict], got: dict[str, dict]) -> list[store_snapshot.TableDiff]:
    """``diff`` over the tables named in ``want``, the others empty on both sides."""
    empty = {t.name: {} for t in store_snapshot.TABLES}
    return store_snapshot.diff({**empty, **want}, {**empty, **got})
