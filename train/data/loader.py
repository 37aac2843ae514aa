"""Batches from a PCamSplit: block-shuffled streaming, sharded across DDP ranks, prefetched.

Rows are read in blocks of whole HDF5 chunks, a few blocks are shuffled together, and each rank
reads its own blocks, so no process ever holds more than `window` blocks. The order depends only
on (seed, epoch), which is what makes `--resume` reproduce an uninterrupted run.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

import numpy as np
import torch

from e2micro.errors import BadInput

from .augment import augment as apply_augment
from .pcam import PCamSplit, to_model_input


@dataclass(frozen=True)
class Plan:
    blocks: tuple[tuple[int, int], ...]  # (start, stop) rows of this rank, in reading order
    steps: int | None  # batches to yield (equal on every rank when training), None = all


def plan(split: PCamSplit, batch_size: int, *, shuffle: bool, seed: int, epoch: int, rank: int, world: int,
         drop_last: bool, block_rows: int = 1024) -> Plan:
    n, chunk = len(split), split.chunk_rows
    # Small splits get small blocks so that every rank still gets some.
    rows = min(block_rows, max(chunk, -(-n // (8 * world))))
    rows = -(-rows // chunk) * chunk
    blocks = [(s, min(s + rows, n)) for s in range(0, n, rows)]
    order = np.random.default_rng([seed, epoch, 0]).permutation(len(blocks)) if shuffle else np.arange(len(blocks))
    per_rank = [[blocks[i] for i in order[r::world]] for r in range(world)]
    steps = None
    if drop_last:
        # DDP needs the same number of steps on every rank: the smallest share decides.
        steps = min(sum(b - a for a, b in share) for share in per_rank) // batch_size
        if steps == 0:
            raise BadInput(f"split '{split.split}' has {n} rows: too few for batch size {batch_size} × {world} process(es)")
    return Plan(tuple(per_rank[rank]), steps)


def batches(split: PCamSplit, batch_size: int, size: int, *, shuffle: bool = False, augment: tuple[str, ...] = (),
            seed: int = 0, epoch: int = 0, rank: int = 0, world: int = 1, drop_last: bool = False,
            window: int = 4):
    """Yield (x float32 [B, 3, size, size] raw pixels, y int64 [B]) torch tensors."""
    p = plan(split, batch_size, shuffle=shuffle, seed=seed, epoch=epoch, rank=rank, world=world, drop_last=drop_last)
    rng = np.random.default_rng([seed, epoch, 1 + rank])
    emitted = 0
    xs, ys = [], []

    def emit(x, y):
        if augment:
            x = apply_augment(x, augment, rng)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)

    for i, (a, b) in enumerate(p.blocks):
        x, y = split.read(a, b)
        if y is None:  # an images-only file: label −1
            y = np.full(len(x), -1, dtype=np.int64)
        xs.append(to_model_input(x, size))
        ys.append(y)
        last = i == len(p.blocks) - 1
        if len(xs) < window and not last:
            continue
        x, y = np.concatenate(xs), np.concatenate(ys)
        if shuffle:
            perm = rng.permutation(len(x))
            x, y = x[perm], y[perm]
        keep = len(x) if last else len(x) // batch_size * batch_size
        for s in range(0, keep, batch_size):
            if p.steps is not None and emitted == p.steps:
                return
            if s + batch_size > keep and drop_last:
                break
            yield emit(x[s:s + batch_size], y[s:s + batch_size])
            emitted += 1
        xs, ys = ([x[keep:]], [y[keep:]]) if keep < len(x) else ([], [])
    return


def prefetch(iterable, depth: int = 2):
    """Run `iterable` in a background thread (HDF5 reads overlap compute); re-raise its errors."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for item in iterable:
                if stop.is_set():
                    return
                q.put(item)
        except BaseException as e:  # noqa: BLE001 — handed to the consumer
            q.put(e)
        finally:
            q.put(done)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
