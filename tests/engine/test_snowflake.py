"""`$system.genSnowflakeId` (reference §4.1): ids in NocoBase's snowflake layout
(`@nocobase/snowflake-id`: seconds since 2020-11-11, 5-bit worker, 16-bit
sequence)."""

from __future__ import annotations

import time
from itertools import pairwise

import pytest

from engine.snowflake import EPOCH, Snowflake, parse
from tests.engine.test_interpreter import compile_nodes, output, run_workflow


def test_ids_carry_the_second_the_worker_and_a_sequence() -> None:
    before = int(time.time())
    snowflake_id = Snowflake(worker=7).generate()
    second, worker, sequence = parse(snowflake_id)
    assert before <= second <= time.time()
    assert worker == 7 and 0 <= sequence < 2**16
    assert snowflake_id < 2**53  # a safe integer in JavaScript
    assert snowflake_id == ((second - EPOCH) * 32 + 7) * 65536 + sequence


def test_ids_of_one_process_are_unique_and_grow() -> None:
    generator = Snowflake()
    ids = [generator.generate() for _ in range(200_000)]  # more than one second's sequences
    assert all(a < b for a, b in pairwise(ids))


def test_a_worker_outside_0_to_31_is_refused() -> None:
    with pytest.raises(ValueError, match="from 0 to 31"):
        Snowflake(worker=32)


async def test_templates_read_gen_snowflake_id_fresh_each_time() -> None:
    compiled = compile_nodes(
        [output("o", ["{{$system.genSnowflakeId}}", "{{$system.genSnowflakeId}}"])]
    )
    first, second = (await run_workflow(compiled)).output
    assert isinstance(first, int) and isinstance(second, int) and first != second
    assert abs(parse(first)[0] - time.time()) < 5
