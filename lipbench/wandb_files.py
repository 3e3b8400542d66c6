"""Offline W&B runs read back from their `.wandb` files, so a resumed run can tell which epochs W&B already holds.

A `.wandb` file is W&B's record log: a 7-byte file header (":W&B", magic, version), then LevelDB-log framing in
32 KiB blocks (per chunk: CRC32C, little-endian length, type FULL/FIRST/MIDDLE/LAST), each record a protobuf
`Record`. A run killed mid-write leaves a torn last chunk, which is ignored.
"""
import json
from pathlib import Path

from wandb.proto import wandb_internal_pb2

FILE_HEADER = 7
BLOCK = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every whole record of one `.wandb` file, in order."""
    data, pos, pending, found = Path(path).read_bytes(), FILE_HEADER, b"", []
    while pos + CHUNK_HEADER <= len(data):
        if BLOCK - pos % BLOCK < CHUNK_HEADER:  # a block's tail too short for a chunk header is zero padding
            pos += BLOCK - pos % BLOCK
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if kind == 0 or pos + CHUNK_HEADER + length > len(data):  # preallocated zeros, or a torn last chunk
            break
        payload, pos = data[pos + CHUNK_HEADER:pos + CHUNK_HEADER + length], pos + CHUNK_HEADER + length
        pending = payload if kind in (FULL, FIRST) else pending + payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            found.append(record)
    return found


def history(run_dir: Path) -> list[dict]:
    """Every history row that the offline W&B runs in `run_dir/wandb/` hold, oldest file first, as {key: value}."""
    rows = []
    for path in sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")):
        for record in records(path):
            if record.WhichOneof("record_type") == "history":
                row = {"_step": record.history.step.num}
                for item in record.history.item:
                    row[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
                rows.append(row)
    return rows


def logged_epochs(run_dir: Path) -> set[int]:
    """The epochs (W&B steps) that the run dir's offline W&B runs already hold."""
    return {row["_step"] for row in history(run_dir)}
