"""The PyTorch workloads of scripts/gpu-validate.sh: each runs for a fixed number of steps and
prints one JSON line with its pid, steps and the median step time, so that the shell script can
compare the same workload without injection, with the injection library idle, and windowed.

Usage: python workloads.py NAME [--steps N] [--hold-s S]
  gemm          fp32 4096x4096 matmuls (long kernels, few launches)
  short         tiny elementwise ops on a 1k-element tensor (>= 10k launches/s)
  train-fp32    an MLP training loop in fp32 (FP32 SIMT GEMMs on the tensor-core GPU)
  train-bf16    the same loop under bf16 autocast (tensor-core GEMMs)
  loader-pageable  a DataLoader with pin_memory=False feeding non_blocking copies
  graph         a captured CUDA graph replayed (graph kernels)
--hold-s keeps the process running (and profiled) after the timed steps, so the agent and the
collector see it long enough to judge it.
"""

import argparse
import json
import os
import statistics
import time

import torch


def timed(step, steps):
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def gemm():
    a = torch.randn(4096, 4096, device="cuda")
    b = torch.randn(4096, 4096, device="cuda")
    torch.backends.cuda.matmul.allow_tf32 = False

    def step():
        for _ in range(8):
            a.matmul(b)

    return step


def short():
    x = torch.randn(1024, device="cuda")

    def step():
        y = x
        for _ in range(1000):
            y = y * 1.0001 + 0.0001
        return y

    return step


def train(dtype):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = torch.nn.Sequential(
        torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 4096), torch.nn.ReLU(),
        torch.nn.Linear(4096, 1024),
    ).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(2048, 4096, device="cuda")
    y = torch.randn(2048, 1024, device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        if dtype is None:
            loss = torch.nn.functional.mse_loss(model(x), y)
        else:
            with torch.autocast("cuda", dtype=dtype):
                loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()

    return step


def loader_pageable():
    data = torch.utils.data.TensorDataset(torch.randn(4096, 3, 224, 224))
    loader = torch.utils.data.DataLoader(data, batch_size=64, pin_memory=False, num_workers=0)
    batches = iter(())

    def step():
        nonlocal batches
        try:
            (b,) = next(batches)
        except StopIteration:
            batches = iter(loader)
            (b,) = next(batches)
        b.to("cuda", non_blocking=True).mul_(2.0)

    return step


def graph():
    x = torch.randn(1024, 1024, device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            (x * 2 + 1).relu()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        y = x
        for _ in range(50):
            y = (y * 1.0001 + 0.0001).relu()

    def step():
        g.replay()

    return step


WORKLOADS = {
    "gemm": gemm,
    "short": short,
    "train-fp32": lambda: train(None),
    "train-bf16": lambda: train(torch.bfloat16),
    "loader-pageable": loader_pageable,
    "graph": graph,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("name", choices=sorted(WORKLOADS))
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--hold-s", type=float, default=0.0)
    args = p.parse_args()
    step = WORKLOADS[args.name]()
    timed(step, 5)  # warm-up: cuBLAS handles, autotuning, the allocator
    times = timed(step, args.steps)
    deadline = time.monotonic() + args.hold_s
    while time.monotonic() < deadline:
        step()
    torch.cuda.synchronize()
    print(json.dumps({
        "workload": args.name, "pid": os.getpid(), "steps": args.steps,
        "median_step_s": statistics.median(times), "device": torch.cuda.get_device_name(),
    }), flush=True)


if __name__ == "__main__":
    main()
